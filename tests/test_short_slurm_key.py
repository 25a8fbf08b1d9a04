"""A slurm.key under 16 bytes: accepted, as Slurm accepts it, but warned about
once per file path (logger "slurmauth_fast.keys"), naming the file; the CLI's
keys-check and jwks list show the warning too."""
import base64
import json
import logging
import os

import pytest

from slurmauth_fast.cli import EXIT_OK, main
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential


def _key(tmp_path, data):
    path = tmp_path / "slurm.key"
    path.write_bytes(data)
    os.chmod(path, 0o600)
    return str(path)


def _warnings(caplog, path):
    return [r for r in caplog.records
            if r.name == "slurmauth_fast.keys" and r.levelno == logging.WARNING and path in r.getMessage()]


def test_short_slurm_key_loads_and_warns_once(tmp_path, caplog):
    path = _key(tmp_path, b"x" * 15)
    with caplog.at_level(logging.WARNING, logger="slurmauth_fast.keys"):
        ring = Keyring.load(conf_dir=str(tmp_path), env={})
        ring.reload()
        Keyring.load(conf_dir=str(tmp_path), env={})
    got = _warnings(caplog, path)
    assert len(got) == 1 and "15 bytes" in got[0].getMessage()
    assert ring.warnings and path in ring.warnings[0]
    # still a working key, as in Slurm
    cred = Verifier(ring, verifier_uid=0).verify(create_credential(ring, uid=1, gid=2, host="h"))
    assert (cred.uid, cred.gid) == (1, 2)


@pytest.mark.parametrize("size", [16, 32, 1024])
def test_long_enough_key_does_not_warn(tmp_path, caplog, size):
    path = _key(tmp_path, b"y" * size)
    with caplog.at_level(logging.WARNING, logger="slurmauth_fast.keys"):
        ring = Keyring.load(conf_dir=str(tmp_path), env={})
    assert not _warnings(caplog, path) and ring.warnings == ()


def test_keys_check_shows_the_warning(tmp_path, capsys):
    path = _key(tmp_path, b"z" * 8)
    assert main(["keys-check", "--conf-dir", str(tmp_path)]) == EXIT_OK
    out, err = capsys.readouterr()
    doc = json.loads(out)
    assert len(doc["warnings"]) == 1 and path in doc["warnings"][0] and "8 bytes" in doc["warnings"][0]
    assert "warning:" in err and path in err
    _key(tmp_path, b"z" * 16)
    assert main(["keys-check", "--conf-dir", str(tmp_path)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert json.loads(out)["warnings"] == [] and "warning" not in err


def test_jwks_list_shows_short_keys(tmp_path, capsys):
    key = {"kid": "k1", "kty": "oct", "alg": "HS256", "k": base64.b64encode(b"s" * 32).decode()}
    short = dict(key, kid="tiny", k=base64.b64encode(b"s" * 10).decode())
    jwks = tmp_path / "slurm.jwks"
    jwks.write_text(json.dumps({"keys": [key, short]}))
    os.chmod(jwks, 0o600)
    path = _key(tmp_path, b"q" * 12)       # the slurm.key beside it, read when the jwks is gone
    assert main(["jwks", "list", "-f", str(jwks)]) == EXIT_OK
    out, err = capsys.readouterr()
    assert "(SHORT)" in out and out.count("(SHORT)") == 1
    assert "'tiny'" in err and str(jwks) in err
    assert path in err and "12 bytes" in err
