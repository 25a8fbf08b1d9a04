"""``slurmauth-fast token`` / ``jwt-verify``: scontrol's output, Slurm's key rules, exit codes."""
import base64
import json
import os
import pwd
import subprocess
import sys
import time

import jwt as pyjwt
import pytest

from slurmauth_fast import cli

KEY = bytes(range(32))
ME = pwd.getpwuid(os.getuid()).pw_name


@pytest.fixture
def ssl(tmp_path):
    (tmp_path / "jwt_hs256.key").write_bytes(KEY)
    (tmp_path / "jwt_hs256.key").chmod(0o600)
    return tmp_path


def run(capsys, *argv):
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def claims_of(line):
    assert line.startswith("SLURM_JWT=") and line.endswith("\n") and line.count("\n") == 1
    tok = line[len("SLURM_JWT="):-1]
    return tok, pyjwt.decode(tok, KEY, algorithms=["HS256"])


def test_token_prints_like_scontrol(capsys, ssl):
    before = int(time.time())
    rc, out, err = run(capsys, "token", "--state-save-location", str(ssl))
    assert (rc, err) == (0, "")
    _tok, c = claims_of(out)
    assert c["sun"] == ME and c["exp"] - c["iat"] == 1800 and before <= c["iat"] <= before + 5
    assert list(c) == ["exp", "iat", "sun"]


def test_token_username_lifespan_and_key(capsys, ssl):
    rc, out, _ = run(capsys, "token", "--key", str(ssl / "jwt_hs256.key"), "--username", "daemon",
                     "--lifespan", "60")
    assert rc == 0
    _tok, c = claims_of(out)
    assert (c["sun"], c["exp"] - c["iat"]) == ("daemon", 60)
    rc, out, _ = run(capsys, "token", "--auth-alt-parameters", f"jwt_key={ssl / 'jwt_hs256.key'}")
    assert rc == 0 and claims_of(out)[1]["sun"] == ME


@pytest.mark.parametrize("lifespan", ["0", "-5", "4294967294"])
def test_token_bad_lifespan(capsys, ssl, lifespan):
    rc, out, err = run(capsys, "token", "--state-save-location", str(ssl), "--lifespan", lifespan)
    assert rc == cli.EXIT_FAILED and out == "" and "lifespan" in err


def test_token_insecure_key(capsys, ssl):
    (ssl / "jwt_hs256.key").chmod(0o644)
    rc, out, err = run(capsys, "token", "--state-save-location", str(ssl))
    assert rc == cli.EXIT_CONFIG and out == "" and "insecure" in err


def test_token_needs_a_key(capsys, ssl):
    rc, _, err = run(capsys, "token")
    assert rc == cli.EXIT_CONFIG and "no jwt_key" in err
    rc, _, err = run(capsys, "token", "--auth-alt-parameters", "jwks=/nonexistent.json")
    assert rc == cli.EXIT_CONFIG and "no HS256 key" in err


@pytest.mark.skipif(os.getuid() != 0, reason="minting for another user needs root (CI runs as root)")
def test_token_disabled_creation_still_allows_root(capsys, ssl):
    rc, out, _ = run(capsys, "token", "--state-save-location", str(ssl), "--username", "bin",
                     "--auth-alt-parameters", "disable_token_creation")
    assert rc == 0 and claims_of(out)[1]["sun"] == "bin"


def test_jwt_verify_round_trip(capsys, ssl, monkeypatch):
    _, out, _ = run(capsys, "token", "--state-save-location", str(ssl), "--username", "root")
    tok = out.strip().split("=", 1)[1]
    monkeypatch.setenv("SLURM_JWT", tok)
    rc, out, err = run(capsys, "jwt-verify", "--state-save-location", str(ssl), "--username", "daemon")
    assert rc == 0, err
    got = json.loads(out)
    daemon = pwd.getpwnam("daemon").pw_uid
    assert (got["username"], got["acting_for"], got["uid"], got["alg"]) == ("root", "daemon", daemon, "HS256")
    # a tampered token fails with exit code 1
    h, c, s = tok.split(".")
    forged = h + "." + base64.urlsafe_b64encode(b'{"exp":9999999999,"iat":1,"sun":"root"}').decode().rstrip("=")
    rc, out, err = run(capsys, "jwt-verify", forged + "." + s, "--state-save-location", str(ssl))
    assert rc == cli.EXIT_FAILED and out == "" and "signature" in err


def test_token_client_ids(capsys, ssl, monkeypatch):
    rc, out, _ = run(capsys, "token", "--state-save-location", str(ssl), "--username", "daemon", "--client-ids")
    assert rc == 0
    tok, c = claims_of(out)
    assert (c["sun"], c["uid"], c["id"]["name"]) == ("daemon", pwd.getpwnam("daemon").pw_uid, "daemon")
    rc, out, _ = run(capsys, "jwt-verify", tok, "--state-save-location", str(ssl),
                     "--auth-alt-parameters", "use_jwt_client_ids_only")
    assert rc == 0 and json.loads(out)["id"]["name"] == "daemon"


def test_jwt_verify_without_token(capsys, ssl, monkeypatch):
    monkeypatch.delenv("SLURM_JWT", raising=False)
    rc, _, err = run(capsys, "jwt-verify", "--state-save-location", str(ssl))
    assert rc == cli.EXIT_USAGE and "SLURM_JWT" in err


def test_console_entry_point(ssl):
    """The installed command (python -m) prints exactly one SLURM_JWT= line."""
    r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "token", "--state-save-location", str(ssl)],
                       capture_output=True, text=True, check=True)
    assert claims_of(r.stdout)[1]["sun"] == ME
