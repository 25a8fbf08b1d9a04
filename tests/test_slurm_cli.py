"""The auth/slurm subcommands: create, verify and check keys from the shell."""
import base64
import json
import os

from slurmauth_fast.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, main


def _conf(tmp_path, mode=0o600):
    key = {"kid": "k1", "kty": "oct", "alg": "HS256", "use": "default",
           "k": base64.b64encode(b"s" * 32).decode(), "exp": 4102444800}
    path = tmp_path / "slurm.jwks"
    path.write_text(json.dumps({"keys": [key, dict(key, kid="k2", use="sig")]}))
    os.chmod(path, mode)
    return str(tmp_path)


def test_create_then_verify(tmp_path, capsys):
    conf = _conf(tmp_path)
    assert main(["cred-create", "--conf-dir", conf, "--uid", "1234", "--gid", "99",
                 "--cluster", "c1", "--host", "n1", "--payload-hex", "02ff", "--ruid", "7"]) == EXIT_OK
    token = capsys.readouterr().out.strip()
    assert main(["cred-verify", token, "--conf-dir", conf, "--verifier-uid", "7"]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert (out["uid"], out["gid"], out["cluster"], out["host"], out["payload_hex"], out["kid"]) == (
        1234, 99, "c1", "n1", "02ff", "k1")
    # ruid 7 only: another verifier uid fails with exit 1
    assert main(["cred-verify", token, "--conf-dir", conf, "--verifier-uid", "8"]) == EXIT_FAILED
    assert "ruid" in capsys.readouterr().err


def test_context_option(tmp_path, capsys):
    conf = _conf(tmp_path)
    main(["cred-create", "--conf-dir", conf, "--context", "launch", "--client-ids"])
    token = capsys.readouterr().out.strip()
    assert main(["cred-verify", token, "--conf-dir", conf]) == EXIT_FAILED
    capsys.readouterr()
    assert main(["cred-verify", token, "--conf-dir", conf, "--context", "launch"]) == EXIT_OK
    assert json.loads(capsys.readouterr().out)["id"]["dir"]


def test_keys_check(tmp_path, capsys):
    conf = _conf(tmp_path)
    assert main(["keys-check", "--conf-dir", conf]) == EXIT_OK
    out = json.loads(capsys.readouterr().out)
    assert out["jwks"] and [k["kid"] for k in out["keys"]] == ["k1", "k2"]
    assert out["keys"][0] == {"kid": "k1", "exp": 4102444800, "default": True}
    assert "s" * 8 not in json.dumps(out) and base64.b64encode(b"s" * 32).decode() not in json.dumps(out)


def test_unsafe_key_file_is_a_config_error(tmp_path, capsys):
    conf = _conf(tmp_path, mode=0o644)
    assert main(["keys-check", "--conf-dir", conf]) == EXIT_CONFIG
    assert "insecure" in capsys.readouterr().err
