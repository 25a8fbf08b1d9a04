"""The slurmauth-fast command line, driven through main(argv) and
``python -m slurmauth_fast.cli`` in real temporary directories."""
import base64
import json
import os
import stat
import subprocess
import sys
import time

import pytest

from slurmauth_fast import HS256Key, cli
from slurmauth_fast.cli import bench as bench_cli
from slurmauth_fast import errors as E
from slurmauth_fast.cli import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE
from slurmauth_fast.cli.inspect import describe_payload, errno_name
from slurmauth_fast.keyadmin import default_jwks_path, default_key_path
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

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

QUICK = ["--seconds", "0.02", "--rounds", "1", "--threads", "0", "--clients", "0",
         "--json", "", "--png", ""]
#: ``bench`` runs the benchmark of a source checkout; an installed wheel has none (its
#: absence is tested below).
needs_checkout = pytest.mark.skipif(
    not bench_cli.BENCHMARK.is_file(),
    reason="slurmauth_fast is installed without a source checkout: bench has no benchmark to run")


def test_bench_without_a_checkout_says_so(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(bench_cli, "BENCHMARK", tmp_path / "missing.py")
    rc, out, err = run(["bench"], capsys)
    assert rc == EXIT_USAGE and "not found" in err and "source checkout" in err


@needs_checkout
def test_bench_runs_and_reports(capsys):
    """``bench`` is benchmarks/verify_rate.py: the same runner and table."""
    rc, out, err = run(["bench", *QUICK, "--no-compare", "--no-progress"], capsys)
    assert rc == EXIT_OK and "ops/s" in out and "vs PyJWT" in out
    assert "slurmauth_fast verify " in out and "slurmauth_fast verify_rpc" in out
    rows = [line.split("  ")[0] for line in out.splitlines()]
    assert not [r for r in rows if r.startswith(("PyJWT", "libjwt", "joserfc", "OpenSSL"))]
    assert err == ""


@needs_checkout
def test_bench_progress_and_json(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    rc, out, err = run(["bench", *QUICK[:-4], "--json", out_json, "--png", "", "--no-native",
                        "--no-munge", "--progress"], capsys)
    assert rc == EXIT_OK and "round 1/1 done" in err
    doc = json.loads(out_json.read_text())
    assert {r["name"] for r in doc["rows"]} >= {"slurmauth_fast verify", "minimal Python hmac+json"}


@needs_checkout
@pytest.mark.parametrize("bad", [["--seconds", "0"], ["--rounds", "0"], ["--threads", "1,x"]])
def test_bench_rejects_bad_options(capsys, bad):
    with pytest.raises(SystemExit) as e:
        cli.main(["bench", *bad])
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


# --- jwks: a whole rotation in a real directory ---------------------------------

def jwks_doc(path):
    return json.loads(path.read_text())


def kids(path):
    return [k["kid"] for k in jwks_doc(path)["keys"]]


def test_jwks_rotation_workflow(tmp_path, capsys):
    f = tmp_path / "slurm.jwks"
    assert run(["jwks", "new", "-f", f, "--kid", "k1"], capsys)[0] == EXIT_OK
    assert mode(f) == 0o600 and kids(f) == ["k1"]
    ring1 = Keyring.load(jwks_path=str(f), key_path=str(tmp_path / "none"))
    assert ring1.default_key().kid == "k1" and len(base64.urlsafe_b64decode(
        jwks_doc(f)["keys"][0]["k"] + "==")) == 1024
    old_token = create_credential(ring1, uid=1000, gid=1000)

    rc, out, _ = run(["jwks", "rotate", "-f", f, "--kid", "k2", "--old-exp", 3600], capsys)
    assert rc == EXIT_OK and "new default kid k2" in out and "retire k1" in out
    assert mode(f) == 0o600 and kids(f) == ["k1", "k2"]
    ring2 = Keyring.load(jwks_path=str(f), key_path=str(tmp_path / "none"))
    assert ring2.default_key().kid == "k2"
    old = ring2.lookup("k1")
    assert old.exp is not None and 3500 < old.exp - time.time() <= 3600
    # a credential signed before the rotation still verifies; new ones use k2
    v = Verifier(ring2, verifier_uid=os.getuid())
    assert v.verify(old_token).kid == "k1"
    assert v.verify(create_credential(ring2, uid=1000, gid=1000)).kid == "k2"

    rc, out, _ = run(["jwks", "list", "-f", f], capsys)
    assert rc == EXIT_OK
    lines = out.splitlines()
    assert lines[0].split() == ["KID", "DEFAULT", "BYTES", "EXPIRES"]
    assert lines[1].split()[:3] == ["k1", "no", "1024"] and "UTC" in lines[1]
    assert lines[2].split()[:4] == ["k2", "yes", "1024", "never"]
    secret = jwks_doc(f)["keys"][0]["k"]
    assert secret[:16] not in out  # never the key material

    # the default cannot be retired; the old key can
    rc, _, err = run(["jwks", "retire", "-f", f, "k2"], capsys)
    assert rc == EXIT_USAGE and "default" in err and kids(f) == ["k1", "k2"]
    assert run(["jwks", "retire", "-f", f, "k1"], capsys)[0] == EXIT_OK
    assert kids(f) == ["k2"] and mode(f) == 0o600
    ring3 = Keyring.load(jwks_path=str(f), key_path=str(tmp_path / "none"))
    with pytest.raises(E.KeyIdError):
        Verifier(ring3, verifier_uid=os.getuid()).verify(old_token)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["slurm.jwks"]  # no temporary files left


def test_jwks_add_and_errors(tmp_path, capsys):
    f = tmp_path / "slurm.jwks"
    assert run(["jwks", "new", "-f", f, "--kid", "a", "--bytes", 32], capsys)[0] == EXIT_OK
    assert run(["jwks", "new", "-f", f, "--kid", "b"], capsys)[0] == EXIT_CONFIG     # exists
    assert run(["jwks", "add", "-f", f, "--kid", "b", "--bytes", 32], capsys)[0] == EXIT_OK
    doc = jwks_doc(f)
    assert [k.get("use") for k in doc["keys"]] == ["default", None]
    assert run(["jwks", "add", "-f", f, "--kid", "b"], capsys)[0] == EXIT_USAGE      # duplicate kid
    assert run(["jwks", "add", "-f", f, "--kid", "c", "--default"], capsys)[0] == EXIT_OK
    assert [k.get("use") for k in jwks_doc(f)["keys"]] == [None, None, "default"]
    assert run(["jwks", "retire", "-f", f, "zzz"], capsys)[0] == EXIT_USAGE           # unknown kid
    assert run(["jwks", "add", "-f", f, "--bytes", 8], capsys)[0] == EXIT_USAGE       # too short for Slurm
    assert run(["jwks", "list", "-f", tmp_path / "missing.jwks"], capsys)[0] == EXIT_CONFIG


def test_jwks_refuses_an_unsafe_or_invalid_file(tmp_path, capsys):
    f = tmp_path / "slurm.jwks"
    assert run(["jwks", "new", "-f", f, "--kid", "a"], capsys)[0] == EXIT_OK
    os.chmod(f, 0o644)  # Slurm refuses a key file others can read; so do we
    rc, _, err = run(["jwks", "add", "-f", f, "--kid", "b"], capsys)
    assert rc == EXIT_CONFIG and "insecure" in err
    os.chmod(f, 0o600)
    f.write_text('{"keys": [{"kid": "x"}]}')  # breaks Slurm's rules: never rewritten as valid-looking
    rc, _, err = run(["jwks", "rotate", "-f", f, "--kid", "y"], capsys)
    assert rc == EXIT_CONFIG
    assert jwks_doc(f) == {"keys": [{"kid": "x"}]}


def test_jwks_implicit_default_is_made_explicit(tmp_path, capsys):
    """Slurm: with no "use":"default" the first key signs. Adding a key keeps that
    key the default (and says so explicitly), rotating moves it."""
    f = tmp_path / "slurm.jwks"
    def k(kid):
        return {"alg": "HS256", "kty": "oct", "kid": kid, "k": base64.urlsafe_b64encode(os.urandom(32)).decode()}
    f.write_text(json.dumps({"keys": [k("first"), k("second")]}))
    os.chmod(f, 0o600)
    assert run(["jwks", "add", "-f", f, "--kid", "third"], capsys)[0] == EXIT_OK
    assert Keyring.from_jwks(f.read_text()).default_key().kid == "first"
    assert run(["jwks", "retire", "-f", f, "first"], capsys)[0] == EXIT_USAGE
    assert run(["jwks", "rotate", "-f", f, "--kid", "fourth"], capsys)[0] == EXIT_OK
    assert Keyring.from_jwks(f.read_text()).default_key().kid == "fourth"
    assert run(["jwks", "retire", "-f", f, "first"], capsys)[0] == EXIT_OK


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_jwks_owner(tmp_path, capsys):
    import pwd
    nobody = pwd.getpwnam("nobody")
    f = tmp_path / "slurm.jwks"
    assert run(["jwks", "new", "-f", f, "--owner", "nobody"], capsys)[0] == EXIT_OK
    st = os.stat(f)
    assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid) and mode(f) == 0o600


@pytest.mark.skipif(os.geteuid() != 0, reason="files owned by another user need root")
def test_replacing_a_key_file_keeps_its_owner(tmp_path, capsys):
    """root edits slurm.jwks owned by SlurmUser: the result must stay readable by
    SlurmUser (same owner and group, mode 0600), or slurmctld could not reload it."""
    import pwd
    nobody = pwd.getpwnam("nobody")
    f = tmp_path / "slurm.jwks"
    assert run(["jwks", "new", "-f", f, "--kid", "a", "--owner", "nobody"], capsys)[0] == EXIT_OK
    for argv in (["jwks", "add", "--kid", "b"], ["jwks", "rotate", "--kid", "c"], ["jwks", "retire", "a"]):
        assert run(argv[:2] + ["-f", f] + argv[2:], capsys)[0] == EXIT_OK
        st = os.stat(f)
        assert (st.st_uid, st.st_gid, mode(f)) == (nobody.pw_uid, nobody.pw_gid, 0o600), argv
    key = tmp_path / "slurm.key"
    assert run(["keygen", key, "--owner", "nobody"], capsys)[0] == EXIT_OK
    assert run(["keygen", key, "--force"], capsys)[0] == EXIT_OK
    assert os.stat(key).st_uid == nobody.pw_uid


def test_rotate_never_extends_an_existing_deadline(tmp_path, capsys):
    f = tmp_path / "slurm.jwks"
    soon = int(time.time()) + 100
    assert run(["jwks", "new", "-f", f, "--kid", "a", "--exp", soon], capsys)[0] == EXIT_OK
    assert run(["jwks", "rotate", "-f", f, "--kid", "b", "--old-exp", 86400], capsys)[0] == EXIT_OK
    assert jwks_doc(f)["keys"][0]["exp"] == soon


def test_jwks_default_path_follows_slurm():
    assert default_jwks_path({}) == "/etc/slurm/slurm.jwks"
    assert default_jwks_path({"SLURM_CONF": "/opt/slurm/etc/slurm.conf"}) == "/opt/slurm/etc/slurm.jwks"
    assert default_jwks_path({"SLURM_SACK_JWKS": "/x.jwks", "SLURM_CONF": "/y/slurm.conf"}) == "/x.jwks"
    assert default_key_path({"SLURM_CONF": "/opt/slurm/etc/slurm.conf"}) == "/opt/slurm/etc/slurm.key"
    assert default_key_path({"SLURM_SACK_KEY": "/k", "SLURM_CONF": "/y/slurm.conf"}) == "/k"


# --- verify: explains rejections ----------------------------------------------

@pytest.fixture
def conf(tmp_path, capsys):
    assert run(["jwks", "new", "-f", tmp_path / "slurm.jwks", "--kid", "k1"], capsys)[0] == EXIT_OK
    return tmp_path


def test_verify_accepts_and_shows_the_credential(conf, capsys):
    ring = Keyring.load(conf_dir=str(conf))
    tok = create_credential(ring, uid=1234, gid=99, host="n7", payload=b"\x01\x03\xf0")
    rc, out, _ = run(["verify", "--conf-dir", conf, "--uid", 5, tok], capsys)
    assert rc == EXIT_OK and out.startswith("VERIFIED with") and "(kid k1)" in out
    assert "1234" in out and '"n7"' in out and "msg_type 1008" in out
    rc, out, _ = run(["verify", "--conf-dir", conf, "--json", tok], capsys)
    doc = json.loads(out)
    assert rc == EXIT_OK and doc["verified"] and doc["credential"]["uid"] == 1234


@pytest.mark.parametrize("mutate, cls", [
    (lambda ring, t: create_credential(ring, uid=1, gid=1, now=1000), "ExpiredError"),
    (lambda ring, t: create_credential(ring, uid=1, gid=1, ruid=4242), "AudienceError"),
    (lambda ring, t: create_credential(ring, uid=1, gid=1, context="launch"), "ContextError"),
    (lambda ring, t: t[:-3] + ("AAA" if t[-3:] != "AAA" else "BBB"), "SignatureError"),
    (lambda ring, t: t.rsplit(".", 1)[0], "SegmentError"),
    (lambda ring, t: HS256Key(KEY).sign({"uid": 1}, {"kid": "nope"}), "KeyIdError"),
])
def test_verify_explains_each_rejection(conf, capsys, mutate, cls):
    ring = Keyring.load(conf_dir=str(conf))
    tok = mutate(ring, create_credential(ring, uid=1, gid=1))
    rc, out, _ = run(["verify", "--conf-dir", conf, "--uid", 5, tok], capsys)
    assert rc == EXIT_FAILED
    assert out.startswith(f"REJECTED: {cls} (slurm_errno 6000 ESLURM_AUTH_CRED_INVALID): ")
    rc, out, _ = run(["verify", "--conf-dir", conf, "--uid", 5, "--json", tok], capsys)
    doc = json.loads(out)
    assert rc == EXIT_FAILED and doc["error"] == cls and doc["slurm_errno"] == 6000 and doc["message"]


def test_verify_without_keys_is_a_config_error(tmp_path, capsys):
    rc, _, err = run(["verify", "--conf-dir", tmp_path, "x.y.z"], capsys)
    assert rc == EXIT_CONFIG and "slurm.key" in err


def test_verify_via_python_dash_m_and_stdin(conf):
    ring = Keyring.load(conf_dir=str(conf))
    tok = create_credential(ring, uid=1, gid=1)
    r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "verify", "--conf-dir", str(conf), "-"],
                       input=tok + "\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == EXIT_OK and "VERIFIED" in r.stdout


# --- verify --slurm-conf: decide as the slurmctld of a slurm.conf ---------------------

def slurm_conf(tmp_path, extra=""):
    (tmp_path / "slurm.key").write_bytes(KEY)
    (tmp_path / "slurm.key").chmod(0o600)
    path = tmp_path / "slurm.conf"
    path.write_text(f"ClusterName=c1\nAuthType=auth/slurm\nSlurmUser={os.getuid()}\n{extra}")
    return path


def test_verify_with_slurm_conf_uses_its_keys_and_slurm_user(tmp_path, capsys):
    conf = slurm_conf(tmp_path)
    ring = Keyring.from_key_bytes(KEY)
    mine = create_credential(ring, uid=1000, gid=1000, ruid=os.getuid())
    other = create_credential(ring, uid=1000, gid=1000, ruid=os.getuid() + 4242)
    rc, out, _ = run(["verify", "--slurm-conf", conf, mine], capsys)
    assert rc == EXIT_OK and out.startswith("VERIFIED with")
    rc, out, _ = run(["verify", "--slurm-conf", conf, other], capsys)
    assert rc == EXIT_FAILED and out.startswith("REJECTED: AudienceError")
    rc, out, _ = run(["verify", "--slurm-conf", conf, "--uid", os.getuid() + 4242, other], capsys)
    assert rc == EXIT_OK                                       # --uid overrides SlurmUser
    rc, out, _ = run(["cred-verify", "--slurm-conf", conf, mine], capsys)
    assert rc == EXIT_OK and json.loads(out)["ruid"] == os.getuid()
    forged = create_credential(Keyring.from_key_bytes(b"x" * 32), uid=1, gid=1)
    rc, out, _ = run(["verify", "--slurm-conf", conf, forged], capsys)
    assert rc == EXIT_FAILED and out.startswith("REJECTED: SignatureError")


def test_verify_with_slurm_conf_reads_use_client_ids(tmp_path, capsys):
    ring = Keyring.from_key_bytes(KEY)
    tok = create_credential(ring, uid=os.getuid(), gid=os.getgid(), use_client_ids=True)
    rc, out, _ = run(["cred-verify", "--slurm-conf", slurm_conf(tmp_path), tok], capsys)
    assert rc == EXIT_OK and json.loads(out)["id"] is None     # ignored without AuthInfo
    conf = slurm_conf(tmp_path, "AuthInfo=use_client_ids\n")
    rc, out, _ = run(["cred-verify", "--slurm-conf", conf, tok], capsys)
    import pwd
    assert rc == EXIT_OK and json.loads(out)["id"]["name"] == pwd.getpwuid(os.getuid()).pw_name


def test_verify_with_a_slurm_conf_without_auth_slurm(tmp_path, capsys):
    conf = slurm_conf(tmp_path)
    conf.write_text("AuthType=auth/munge\n")
    tok = create_credential(Keyring.from_key_bytes(KEY), uid=1, gid=1)
    rc, _, err = run(["verify", "--slurm-conf", conf, tok], capsys)
    assert rc == EXIT_CONFIG and "auth/slurm is neither AuthType" in err
    conf.write_text("AuthType=auth/slurm\nClusterName\n")
    rc, _, err = run(["verify", "--slurm-conf", conf, tok], capsys)
    assert rc == EXIT_CONFIG and "Key=Value" in err
