"""The slurmauth-fast command line, driven through main(argv) and
``python -m slurmauth_fast.cli`` in real temporary directories."""
import base64
import json
import os
import stat
import subprocess
import sys

import pytest

from slurmauth_fast import HS256Key, cli
from slurmauth_fast.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from slurmauth_fast.cli_inspect import describe_payload, errno_name

KEY = b"0123456789abcdef0123456789abcdef"
CLAIMS = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
          "uid": 1000, "gid": 1000, "host": "login01", "payload": "AQPw"}


def run(argv, capsys):
    rc = cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- keygen -----------------------------------------------------------------

def test_keygen_writes_1024_random_bytes_mode_0600(tmp_path, capsys):
    old = os.umask(0)  # whatever the umask, the key is never readable by others
    try:
        rc, out, _ = run(["keygen", tmp_path / "slurm.key"], capsys)
    finally:
        os.umask(old)
    path = tmp_path / "slurm.key"
    assert rc == EXIT_OK and "1024" in out
    data = path.read_bytes()
    assert len(data) == 1024 and mode(path) == 0o600
    assert len(set(data)) > 200  # random, not a constant fill
    assert [p.name for p in tmp_path.iterdir()] == ["slurm.key"]  # no temporary file left


def test_keygen_keys_differ_and_size_option(tmp_path, capsys):
    assert run(["keygen", tmp_path / "a", "--bytes", 64], capsys)[0] == EXIT_OK
    assert run(["keygen", tmp_path / "b", "--bytes", 64], capsys)[0] == EXIT_OK
    a, b = (tmp_path / "a").read_bytes(), (tmp_path / "b").read_bytes()
    assert len(a) == len(b) == 64 and a != b


def test_keygen_refuses_to_overwrite_without_force(tmp_path, capsys):
    path = tmp_path / "slurm.key"
    path.write_bytes(b"the old key, still in use")
    rc, _, err = run(["keygen", path], capsys)
    assert rc == EXIT_CONFIG and "--force" in err
    assert path.read_bytes() == b"the old key, still in use"
    rc, _, _ = run(["keygen", path, "--force"], capsys)
    assert rc == EXIT_OK and len(path.read_bytes()) == 1024 and mode(path) == 0o600


def test_keygen_refuses_through_a_symlink_without_force(tmp_path, capsys):
    target = tmp_path / "elsewhere"
    target.write_bytes(b"x")
    (tmp_path / "slurm.key").symlink_to(target)
    assert run(["keygen", tmp_path / "slurm.key"], capsys)[0] == EXIT_CONFIG
    assert target.read_bytes() == b"x"


def test_keygen_too_small_is_a_usage_error(tmp_path, capsys):
    rc, _, err = run(["keygen", tmp_path / "k", "--bytes", 8], capsys)
    assert rc == EXIT_USAGE and "16" in err
    assert not (tmp_path / "k").exists()


def test_keygen_missing_directory(tmp_path, capsys):
    rc, _, err = run(["keygen", tmp_path / "no" / "such" / "slurm.key"], capsys)
    assert rc == EXIT_CONFIG and "cannot create" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_keygen_owner(tmp_path, capsys):
    import pwd
    nobody = pwd.getpwnam("nobody")
    rc, out, _ = run(["keygen", tmp_path / "slurm.key", "--owner", f"nobody:{nobody.pw_gid}"], capsys)
    st = os.stat(tmp_path / "slurm.key")
    assert rc == EXIT_OK and (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
    assert stat.S_IMODE(st.st_mode) == 0o600


def test_keygen_unknown_owner(tmp_path, capsys):
    rc, _, err = run(["keygen", tmp_path / "slurm.key", "--owner", "no-such-user-xyz"], capsys)
    assert rc == EXIT_USAGE and "no such user" in err
    assert not (tmp_path / "slurm.key").exists()


# --- decode -------------------------------------------------------------------

def test_decode_is_labelled_unverified(capsys):
    tok = HS256Key(KEY).sign(CLAIMS, {"kid": "k1"})
    rc, out, _ = run(["decode", tok], capsys)
    assert rc == EXIT_OK
    assert out.startswith("UNVERIFIED")
    assert '"k1"' in out and "login01" in out and "2025-11-24 16:01:00 UTC" in out
    assert "anyone may verify" in out and "hash type NONE (msg_type only), msg_type 1008" in out


def test_decode_does_not_check_the_signature(capsys):
    tok = HS256Key(KEY).sign(CLAIMS)
    forged = tok[:-5] + "AAAAA"
    rc, out, _ = run(["decode", "--json", forged], capsys)
    doc = json.loads(out)
    assert rc == EXIT_OK and doc["verified"] is False and doc["claims"]["uid"] == 1000


def test_decode_reads_stdin_and_reports_garbage():
    r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "decode"], input="not-a-token\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_FAILED
    assert "UNVERIFIED" in r.stdout and "1 '.'-separated segments" in r.stdout


def test_describe_payload():
    digest = bytes(range(32))
    assert describe_payload(base64.b64encode(b"\x04" + digest).decode()) == f"hash type SHA3-256, digest {digest.hex()}"
    assert describe_payload(base64.b64encode(b"\x02" + digest).decode()).startswith("hash type K12")
    assert describe_payload("***") == "not valid base64"
    assert describe_payload(5) == "not a string"


def test_errno_names():
    assert errno_name(6000) == "ESLURM_AUTH_CRED_INVALID"
    assert errno_name(6007) == "ESLURM_AUTH_UNPACK"


# --- bench --------------------------------------------------------------------

def test_bench_runs_and_reports(capsys):
    rc, out, err = run(["bench", "--seconds", "0.2", "--no-compare"], capsys)
    assert rc == EXIT_OK and "slurmauth_fast" in out and "tokens/s" in out
    assert "verified in" not in err  # short runs are quiet


def test_bench_progress(capsys):
    rc, out, err = run(["bench", "--seconds", "1.5", "--no-compare", "--progress"], capsys)
    assert rc == EXIT_OK and "slurmauth_fast: " in err and "verified in" in err


def test_bench_rejects_bad_seconds(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", "--seconds", "0"])
    assert e.value.code == EXIT_USAGE


# --- the command line as a whole ---------------------------------------------

def test_help_lists_the_commands_and_exit_codes():
    r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "--help"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0
    for name in ("keygen", "jwks", "verify", "decode", "bench", "Exit codes"):
        assert name in r.stdout


def test_no_command_is_a_usage_error(capsys):
    assert cli.main([]) == EXIT_USAGE
