"""slurmauth_fast.munge against a real munged (tests/munged.py starts one).

Everything here talks to a private munged through libmunge; tests skip with a
reason when munged or libmunge is not installed (CI installs both).
"""
from __future__ import annotations

import ipaddress
import os
import pwd
import socket
import subprocess
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmauth_fast import errors, munge
from slurmauth_fast.munge import Cipher, Mac, MungeContext, Zip

from clock import c_time_floor
from munged import (MUNGE_CLI, MUNGED_DEFAULT_TTL, MUNGED_MAX_TTL, UNMUNGE_CLI, MungedDaemon,
                    munged, run_as, skip_unless_libmunge, skip_unless_munge)

__all__ = ["munged"]  # the fixture, imported for pytest

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to fork a child that setuid()s")


@pytest.fixture
def ctx(munged):
    return MungeContext(socket=munged.socket)


def nobody():
    pw = pwd.getpwnam("nobody")
    return pw.pw_uid, pw.pw_gid


def call_with_deadline(fn, seconds=60.0):
    """Run fn in a thread; fail (instead of hanging the suite) if it never returns."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:  # noqa: BLE001
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "libmunge call hung"
    if "error" in out:
        raise out["error"]
    return out["value"]


# -- round trips ----------------------------------------------------------------

def test_round_trip_reports_everything(ctx):
    before = c_time_floor()
    cred = ctx.encode(b"hello munge")
    assert cred.startswith("MUNGE:") and cred.endswith(":")
    got = ctx.decode(cred)
    assert got.payload == b"hello munge"
    assert (got.uid, got.gid) == (os.getuid(), os.getgid())
    assert got.ttl == MUNGED_DEFAULT_TTL
    assert before <= got.encode_time <= got.decode_time <= int(time.time())
    assert isinstance(got.origin, ipaddress.IPv4Address)
    assert (got.cipher, got.mac, got.zip) == (Cipher.AES128, Mac.SHA256, Zip.NONE)  # munged's defaults
    assert got.uid_restriction is None and got.gid_restriction is None
    assert "hello" not in repr(got)  # the payload stays out of reprs and logs


def test_module_level_functions_and_bytes_credential(ctx):
    cred = munge.encode(b"x", ctx)
    assert munge.decode(cred.encode("ascii"), ctx).payload == b"x"


def test_credential_is_frozen(ctx):
    got = ctx.decode(ctx.encode(b"p"))
    with pytest.raises(Exception):
        got.uid = 1  # type: ignore[misc]


@pytest.mark.parametrize("payload", [
    b"",
    bytes(range(256)) * 4,
    b"\0" * 100,
    b"\x02" + bytes(32),  # shaped like a K12 body-hash payload
], ids=["empty", "all-bytes", "nuls", "hash-shaped"])
def test_payloads(ctx, payload):
    assert ctx.decode(ctx.encode(payload)).payload == payload


def test_large_payload(ctx):
    # munged refuses requests over 1 MiB; a 512 KiB payload is ~700 KB of credential.
    payload = os.urandom(512 * 1024)
    assert ctx.decode(ctx.encode(bytearray(payload))).payload == payload


def test_payload_too_large_for_munged(ctx):
    with pytest.raises(errors.MungeBadLengthError) as ei:
        ctx.encode(bytes(1024 * 1024 + 1))
    assert ei.value.munge_errno == 3


def test_credential_over_local_limit_refused_before_munged(ctx):
    with pytest.raises(errors.MungeBadLengthError):
        ctx.decode("MUNGE:" + "A" * 100 + ":", max_len=50)


@settings(max_examples=25)
@given(payload=st.binary(max_size=2048))
def test_payload_round_trip_property(munged, payload):
    c = MungeContext(socket=munged.socket)
    assert c.decode(c.encode(payload)).payload == payload


@pytest.mark.parametrize("cipher", [Cipher.NONE, Cipher.BLOWFISH, Cipher.CAST5, Cipher.AES128, Cipher.AES256])
def test_ciphers(munged, cipher):
    c = MungeContext(socket=munged.socket, cipher=cipher)
    got = c.decode(c.encode(b"secret"))
    assert got.cipher == cipher and got.payload == b"secret"


@pytest.mark.parametrize("mac", [Mac.MD5, Mac.SHA1, Mac.RIPEMD160, Mac.SHA256, Mac.SHA512])
def test_macs(munged, mac):
    c = MungeContext(socket=munged.socket, mac=mac)
    assert c.decode(c.encode(b"m")).mac == mac


@pytest.mark.parametrize("zip_", [Zip.BZLIB, Zip.ZLIB])
def test_compression(munged, zip_):
    c = MungeContext(socket=munged.socket, zip=zip_)
    payload = b"compressible " * 200
    got = c.decode(c.encode(payload))
    assert got.zip == zip_ and got.payload == payload


def test_ttl_is_carried_and_capped(munged):
    s = munged.socket
    assert MungeContext(socket=s, ttl=7).decode(MungeContext(socket=s, ttl=7).encode()).ttl == 7
    mx = MungeContext(socket=s, ttl=munge.TTL_MAXIMUM)
    assert mx.decode(mx.encode()).ttl == MUNGED_MAX_TTL
    big = MungeContext(socket=s, ttl=10 * MUNGED_MAX_TTL)
    assert big.decode(big.encode()).ttl == MUNGED_MAX_TTL


def test_realm_option_is_accepted(ctx, munged):
    c = MungeContext(socket=munged.socket, realm="cluster")
    assert ctx.decode(c.encode(b"r")).payload == b"r"


# -- refusals --------------------------------------------------------------------

def test_expired(munged):
    c = MungeContext(socket=munged.socket, ttl=1)
    cred = c.encode(b"late")
    time.sleep(2.2)
    with pytest.raises(errors.MungeExpiredError) as ei:
        c.decode(cred)
    e = ei.value
    assert isinstance(e, errors.ExpiredError) and isinstance(e, errors.CredentialError)
    assert e.munge_errno == 15 and e.slurm_errno == errors.ESLURM_AUTH_CRED_INVALID
    assert "Expired" in str(e)
    # munged still returns the contents of an expired credential; kept for diagnostics only
    assert e.credential.ttl == 1 and e.credential.payload == b"late"
    assert e.credential.decode_time - e.credential.encode_time > 1


def test_replayed(ctx):
    cred = ctx.encode(b"once")
    assert ctx.decode(cred).payload == b"once"
    with pytest.raises(errors.MungeReplayedError) as ei:
        ctx.decode(cred)
    assert ei.value.munge_errno == 17 and ei.value.credential.payload == b"once"


@pytest.mark.parametrize("cred, exc", [
    ("garbage", errors.MungeBadCredentialError),
    ("MUNGE:", errors.MungeBadCredentialError),
    ("MUNGE:AAAA:", errors.MungeBadVersionError),
    ("", errors.MungeBadArgumentError),  # libmunge: "No credential specified"
])
def test_malformed(ctx, cred, exc):
    with pytest.raises(exc) as ei:
        ctx.decode(cred)
    assert ei.value.munge_errno == exc.code


def test_altered_credential_is_invalid(ctx):
    cred = ctx.encode(b"integrity")
    i = len(cred) // 2
    bad = cred[:i] + ("A" if cred[i] != "A" else "B") + cred[i + 1:]
    with pytest.raises(errors.MungeCredentialInvalidError) as ei:
        ctx.decode(bad)
    assert ei.value.munge_errno == 14 and ei.value.credential is None


def test_other_key_is_invalid(ctx, munged):
    with MungedDaemon() as other:
        foreign = MungeContext(socket=other.socket).encode(b"elsewhere")
    with pytest.raises(errors.MungeCredentialInvalidError):
        ctx.decode(foreign)


@pytest.mark.parametrize("cred", ["MUNGE:\0AAAA:", "MUNGE:é:", 42])
def test_local_refusals_never_reach_munged(cred):
    # no munged needed: refused before libmunge is even asked
    with pytest.raises((errors.MungeBadCredentialError, errors.MungeBadArgumentError)):
        MungeContext(socket="/nonexistent/munge.socket").decode(cred)


# -- uid / gid restriction -----------------------------------------------------------

def test_uid_restriction_refuses_root_and_admits_the_user(munged):
    uid, gid = nobody()
    c = MungeContext(socket=munged.socket, uid_restriction=uid)
    # munged 0.5.15 does not exempt root: a credential for another uid is refused.
    with pytest.raises(errors.MungeUnauthorizedError) as ei:
        c.decode(c.encode(b"for nobody"))
    assert ei.value.munge_errno == 18 and isinstance(ei.value, errors.AudienceError)
    if os.geteuid() != 0:
        pytest.skip("the positive half needs root to become another user")
    cred = c.encode(b"for nobody")
    got = run_as(uid, gid, lambda: MungeContext(socket=munged.socket).decode(cred))
    assert got.payload == b"for nobody" and got.uid_restriction == uid and got.gid_restriction is None
    assert got.uid == os.getuid()  # the ENCODER's identity


@needs_root
def test_uid_restriction_refuses_another_user(munged):
    uid, gid = nobody()
    cred = MungeContext(socket=munged.socket, uid_restriction=0).encode(b"root only")
    with pytest.raises(errors.MungeUnauthorizedError):
        run_as(uid, gid, lambda: MungeContext(socket=munged.socket).decode(cred))


@needs_root
def test_gid_restriction(munged):
    uid, gid = nobody()
    c = MungeContext(socket=munged.socket, gid_restriction=gid)
    with pytest.raises(errors.MungeUnauthorizedError):
        c.decode(c.encode(b"group"))
    cred = c.encode(b"group")
    got = run_as(uid, gid, lambda: MungeContext(socket=munged.socket).decode(cred))
    assert got.payload == b"group" and got.gid_restriction == gid


@needs_root
def test_credential_encoded_by_another_user(munged):
    uid, _ = nobody()
    gid = 4242  # distinct from the uid, so a uid/gid mix-up shows
    cred = run_as(uid, gid, lambda: MungeContext(socket=munged.socket).encode(b"from nobody"))
    got = MungeContext(socket=munged.socket).decode(cred)
    assert (got.uid, got.gid, got.payload) == (uid, gid, b"from nobody")


# -- munged unreachable ------------------------------------------------------------------

def test_munged_down_no_socket(tmp_path):
    skip_unless_munge()
    with MungedDaemon() as d:
        c = MungeContext(socket=d.socket)
        cred = c.encode(b"x")
    c_down = MungeContext(socket=d.socket)  # stopped and cleaned up: socket gone
    for op in (lambda: c_down.decode(cred), lambda: c_down.encode(b"x")):
        with pytest.raises(errors.MungeSocketError) as ei:
            call_with_deadline(op)
        e = ei.value
        assert e.munge_errno == 6 and e.slurm_errno == errors.ESLURM_AUTH_NET_ERROR
        assert d.socket in str(e)


def test_munged_down_stale_socket(tmp_path):
    # A socket file nobody listens on (munged killed hard): connection refused.
    # libmunge retries for a couple of seconds, then reports a socket error.
    skip_unless_libmunge()
    path = str(tmp_path / "stale.socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()
    with pytest.raises(errors.MungeSocketError) as ei:
        call_with_deadline(lambda: MungeContext(socket=path).encode(b"x"))
    assert "refused" in str(ei.value).lower()


def test_munged_wedged_times_out(tmp_path):
    # Something listens on the socket but never answers (a wedged munged):
    # libmunge gives up after its own receive timeout (about 10 s in 0.5.15;
    # EMUNGE_TIMEOUT is unused there) and reports a socket error; no hang.
    skip_unless_libmunge()
    path = str(tmp_path / "wedged.socket")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(8)
    try:
        with pytest.raises(errors.MungeSocketError) as ei:
            call_with_deadline(lambda: MungeContext(socket=path).decode("MUNGE:AAAA:"))
        assert "timed-out" in str(ei.value).lower()
    finally:
        s.close()


# -- the munge command-line tools ------------------------------------------------------

@pytest.mark.skipif(MUNGE_CLI is None or UNMUNGE_CLI is None, reason="munge/unmunge commands not installed")
def test_cli_credential_decoded_by_us(ctx, munged):
    cred = subprocess.run([MUNGE_CLI, "-S", munged.socket, "-s", "from the munge command", "-t", "42"],
                          check=True, capture_output=True, text=True).stdout.strip()
    got = ctx.decode(cred)
    assert got.payload == b"from the munge command" and got.ttl == 42 and got.uid == os.getuid()


@pytest.mark.skipif(MUNGE_CLI is None or UNMUNGE_CLI is None, reason="munge/unmunge commands not installed")
def test_our_credential_decoded_by_unmunge(munged):
    cred = MungeContext(socket=munged.socket, ttl=55, zip=Zip.ZLIB).encode(b"from slurmauth_fast " * 10)
    r = subprocess.run([UNMUNGE_CLI, "-S", munged.socket, "-k", "status,ttl,zip,length"],
                       input=cred, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "Success (0)" in r.stdout and "55" in r.stdout and "zlib" in r.stdout
    assert r.stdout.endswith("from slurmauth_fast " * 10)
    r2 = subprocess.run([UNMUNGE_CLI, "-S", munged.socket], input=cred, capture_output=True, text=True)
    assert r2.returncode == 17  # unmunge's exit status is the munge error: replayed


# -- threads ----------------------------------------------------------------------

def test_many_threads(ctx):
    failures = []

    def worker(n):
        try:
            for i in range(30):
                payload = f"{n}:{i}".encode()
                got = ctx.decode(ctx.encode(payload))
                assert got.payload == payload
        except BaseException as e:  # noqa: BLE001
            failures.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not failures, failures[0]
    assert not any(t.is_alive() for t in threads)


# -- without munged / libmunge ---------------------------------------------------------

@pytest.mark.parametrize("kwargs", [
    dict(ttl=-2), dict(ttl=2 ** 31), dict(ttl="60"), dict(ttl=True),
    dict(uid_restriction=-1), dict(uid_restriction=2 ** 32 - 1), dict(gid_restriction=1.5),
    dict(socket=""), dict(socket="a\0b"), dict(realm=""),
    dict(cipher=99), dict(mac=-1), dict(zip="zlib"),
])
def test_context_validation(kwargs):
    with pytest.raises(errors.MungeBadArgumentError) as ei:
        MungeContext(**kwargs)
    assert isinstance(ei.value, ValueError) and ei.value.slurm_errno == errors.ESLURM_AUTH_BADARG


def test_mac_none_refused():
    with pytest.raises(errors.MungeBadMacError):
        MungeContext(mac=Mac.NONE)


def test_context_accepts_plain_ints():
    c = MungeContext(cipher=5, mac=6, zip=3)
    assert (c.cipher, c.mac, c.zip) == (Cipher.AES256, Mac.SHA512, Zip.ZLIB)


def test_libmunge_absent(monkeypatch):
    monkeypatch.setattr(munge, "LIBMUNGE", "libmunge-not-here.so.99")
    monkeypatch.setattr(munge, "_libs", None)
    assert munge.available() is False
    with pytest.raises(errors.MungeUnavailableError, match="libmunge-not-here"):
        MungeContext().encode(b"x")
    with pytest.raises(errors.MungeUnavailableError):
        munge.decode("MUNGE:AAAA:")


def test_package_imports_without_libmunge():
    # A fresh interpreter where libmunge cannot be opened: the package and the
    # munge module import; only MUNGE calls fail.
    code = (
        "import slurmauth_fast, slurmauth_fast.munge as m\n"
        "m.LIBMUNGE = 'libmunge-not-here.so.99'\n"
        "from slurmauth_fast import HS256Key\n"
        "HS256Key(b'k' * 32).sign({'a': 1})\n"
        "try:\n"
        "    m.encode(b'x')\n"
        "except slurmauth_fast.errors.MungeUnavailableError as e:\n"
        "    print('unavailable', e.slurm_errno)\n"
    )
    import sys
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "unavailable -1"


def test_every_munge_error_code_has_its_class():
    classes = set()
    for code in range(1, 19):
        cls = errors.munge_error_class(code)
        assert cls.code == code and issubclass(cls, errors.MungeError)
        assert issubclass(cls, errors.CredentialError)
        assert cls(munge_errno=code).munge_errno == code
        classes.add(cls)
    assert len(classes) == 18
    assert errors.munge_error_class(0) is errors.MungeError
    assert errors.munge_error_class(99) is errors.MungeError
    net = {c for c in classes if c.slurm_errno == errors.ESLURM_AUTH_NET_ERROR}
    assert net == {errors.MungeSocketError, errors.MungeTimeoutError}


def test_is_supported():
    skip_unless_libmunge()
    # Debian's libmunge2 0.5.15 is built with every cipher, MAC and zip.
    for kind in (Cipher, Mac, Zip):
        for v in kind:
            assert munge.is_supported(v) is (v is not Mac.NONE), v
    with pytest.raises(errors.MungeBadArgumentError):
        munge.is_supported(4)


def test_strerror_from_libmunge():
    skip_unless_libmunge()
    assert munge.strerror(15) == "Expired credential"
    assert munge.strerror(6) == "Socket communication error"
