"""SACK kiosk: wire format, server, client, robustness, real second uid, CLI.

Everything runs over real unix sockets with real keys (slurm.key files) and
real tokens; tokens are checked independently with tokens.Verifier.
"""
import base64
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from munged import connect_as
from hypothesis import given
from hypothesis import strategies as st

from slurmauth_fast import errors, sack
from slurmauth_fast.identity import identity_from_user
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring
from slurmauth_fast.tokens import PROTOCOL_VERSION, Verifier, create_credential

NOBODY = 65534
HANG_GUARD = 60  # seconds: only to turn a hang into a failure, never a timing assertion


def write_key(path: Path, key: bytes) -> Path:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    os.chmod(path, 0o600)
    return path


def short_dir() -> str:
    """A directory anyone may traverse (pytest's tmp_path is 0700 under
    /tmp/pytest-of-root and its paths can exceed the 108-byte sun_path)."""
    d = tempfile.mkdtemp(prefix="sack-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


class ThreadKiosk:
    """A SackServer serving on a thread of this process."""

    def __init__(self, keyring, path, **kw):
        self.server = sack.SackServer(keyring, socket_path=path, **kw)
        self.server.bind()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.path = path
        self.keyring = keyring

    def close(self):
        self.server.stop()
        self.thread.join(HANG_GUARD)
        assert not self.thread.is_alive()
        self.server.close()

    def wait_stat(self, name, value):
        """Wait until the counter reaches value (the C loop refreshes stats after
        each of its rounds); then it must be exactly that."""
        deadline = time.monotonic() + HANG_GUARD
        while self.server.stats.get(name, 0) < value:
            assert time.monotonic() < deadline, (name, self.server.stats)
            time.sleep(0.01)
        assert self.server.stats[name] == value, (name, self.server.stats)


@pytest.fixture(scope="module")
def sockdir():
    d = short_dir()
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def keyfile(sockdir):
    return write_key(Path(sockdir) / "slurm.key", os.urandom(32))


def load_keys(keyfile, jwks=None):
    """Load from exactly these files (no /etc/slurm, no SLURM_* environment)."""
    return Keyring.load(key_path=str(keyfile), jwks_path=jwks and str(jwks),
                        conf_dir=os.path.dirname(keyfile), env={})


@pytest.fixture(scope="module")
def keyring(keyfile):
    return load_keys(keyfile)


@pytest.fixture(scope="module")
def kiosk(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "k.socket"), cluster="testcl", request_timeout=1.0)
    yield k
    k.close()


def raw_exchange(path, data, *, shutdown=True, timeout=10.0):
    """Send raw bytes, optionally half-close, return everything read until EOF
    (b"" means the kiosk closed without a reply)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    try:
        try:
            s.sendall(data)
            if shutdown:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass
        out = b""
        while True:
            try:
                chunk = s.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def assert_alive(kiosk):
    tok = sack.sack_create(SLURM_AUTH_UID_ANY, b"ping", socket_path=kiosk.path)
    assert Verifier(kiosk.keyring).verify(tok).payload == b"ping"


# --- wire format ------------------------------------------------------------

def test_create_request_bytes_match_spec():
    req = sack.encode_create_request(1000, b"\x02ab", version=0x2D00)
    assert req == bytes.fromhex(
        "2d00"          # uint16 version (not counted by length)
        "00000013"      # uint32 length = 4 + 4 + 4 + (4 + 3)
        "0000fa01"      # SACK_CREATE = 64001
        "000003e8"      # r_uid 1000
        "00000003" "026162")  # packmem data


def test_verify_request_bytes_match_spec():
    req = sack.encode_verify_request("abc", version=0x2D00)
    assert req == bytes.fromhex("2d00" "00000010" "0000fa02" "00000004" "61626300")


def test_create_empty_data_is_null_packmem():
    assert sack.encode_create_request(7, b"")[-4:] == b"\0\0\0\0"
    assert sack.decode_create_body(b"\0\0\0\x07\0\0\0\0") == sack.CreateRequest(7, b"")


@pytest.mark.parametrize("body, why", [
    (b"\0\0\0", "truncated uint32"),
    (b"\0\0\0\x01\0\0\0\x05abc", "past the end"),
    (b"\0\0\0\x01\0\0\0\x01ab", "trailing"),
    (b"\0\0\0\x01\x40\0\0\x01", "exceeds 1 GiB"),
])
def test_decode_create_body_rejects(body, why):
    with pytest.raises(errors.UnpackError, match=why):
        sack.decode_create_body(body)


@pytest.mark.parametrize("body, why", [
    (b"\0\0\0\x03abc", "not NUL-terminated"),
    (b"\0\0\0\x04a\0c\0", "embedded NUL"),
    (b"\0\0\0\0", "no token"),
    (b"\0\0\0\x01\0", "no token"),
    (b"\0\0\0\x09abc\0", "past the end"),
    (b"\0\0\0\x02a\0z", "trailing"),
])
def test_decode_verify_body_rejects(body, why):
    with pytest.raises(errors.UnpackError, match=why):
        sack.decode_verify_body(body)


@pytest.mark.parametrize("bad", [-1, 2**32, True, 1.0])
def test_client_rejects_bad_r_uid(bad):
    with pytest.raises(errors.BadArgumentError):
        sack.encode_create_request(bad)


@pytest.mark.parametrize("call", [
    lambda: sack.encode_create_request(0, "text"),
    lambda: sack.encode_verify_request("tok\u00e9n"),
    lambda: sack.encode_verify_request("tok\0en"),
    lambda: sack.encode_verify_request(12),
])
def test_client_rejects_bad_arguments(call):
    with pytest.raises(errors.BadArgumentError):
        call()


# --- socket paths -------------------------------------------------------------

def test_client_socket_order():
    assert sack.client_socket_paths(env={}) == [
        "/run/slurm/sack.socket", "/run/slurmctld/sack.socket", "/run/slurmdbd/sack.socket"]
    assert sack.client_socket_paths("c1", env={}) == [
        "/run/slurm-c1/sack.socket", "/run/slurm/sack.socket",
        "/run/slurmctld/sack.socket", "/run/slurmdbd/sack.socket"]
    assert sack.client_socket_paths("c1", env={"SLURM_SACK_SOCKET": "/x/s"}) == ["/x/s"]


def test_server_socket_path_choice():
    assert sack.server_socket_path("/a/b", env={"RUNTIME_DIRECTORY": "/run/x"}) == "/a/b"
    assert sack.server_socket_path(env={"RUNTIME_DIRECTORY": "/run/x"}) == "/run/x/sack.socket"
    assert sack.server_socket_path(env={}) == "/run/slurm/sack.socket"
    assert sack.server_socket_path(role="slurmctld", env={}) == "/run/slurmctld/sack.socket"
    assert sack.server_socket_path(role="slurmdbd", env={}) == "/run/slurmdbd/sack.socket"
    for bad in ("relative", "/run/a:/run/b"):
        with pytest.raises(errors.BadArgumentError):
            sack.server_socket_path(env={"RUNTIME_DIRECTORY": bad})
    with pytest.raises(errors.BadArgumentError):
        sack.server_socket_path(role="slurmd", env={})


def test_client_uses_only_env_socket(kiosk, monkeypatch, sockdir):
    monkeypatch.setenv("SLURM_SACK_SOCKET", kiosk.path)
    assert Verifier(kiosk.keyring).verify(sack.sack_create(0)).uid == 0
    monkeypatch.setenv("SLURM_SACK_SOCKET", os.path.join(sockdir, "absent.socket"))
    with pytest.raises(errors.SackConnectError, match="absent.socket"):
        sack.sack_create(0, cluster="testcl")


def test_client_falls_through_candidates(kiosk, monkeypatch):
    """The first candidate that accepts wins; missing ones are skipped."""
    monkeypatch.delenv("SLURM_SACK_SOCKET", raising=False)
    tried = []
    real = sack.client._connect_one

    def spy(path, deadline):
        tried.append(path)
        return real(kiosk.path if path == "/run/slurmctld/sack.socket" else path + ".absent", deadline)

    monkeypatch.setattr(sack.client, "_connect_one", spy)
    sack.sack_verify(create_credential(kiosk.keyring, uid=1, gid=1), cluster="zz")
    assert tried == ["/run/slurm-zz/sack.socket", "/run/slurm/sack.socket", "/run/slurmctld/sack.socket"]


def test_socket_mode_is_0666_whatever_the_umask(keyring, sockdir):
    old = os.umask(0o077)
    try:
        k = ThreadKiosk(keyring, os.path.join(sockdir, "mode.socket"))
        try:
            assert stat.S_IMODE(os.stat(k.path).st_mode) == 0o666
            assert stat.S_ISSOCK(os.stat(k.path).st_mode)
        finally:
            k.close()
        assert os.umask(0o077) == 0o077  # restored after bind
    finally:
        os.umask(old)
    assert not os.path.exists(os.path.join(sockdir, "mode.socket"))


def test_bind_replaces_stale_refuses_live_and_non_socket(keyring, kiosk, sockdir):
    stale = os.path.join(sockdir, "stale.socket")
    s = socket.socket(socket.AF_UNIX)
    s.bind(stale)
    s.close()  # a socket file nobody listens on
    k = ThreadKiosk(keyring, stale)
    try:
        sack.sack_create(0, socket_path=stale)
    finally:
        k.close()
    with pytest.raises(errors.SackServerError, match="another SACK kiosk"):
        sack.SackServer(keyring, socket_path=kiosk.path).bind()
    assert_alive(kiosk)
    plain = os.path.join(sockdir, "plain")
    Path(plain).write_text("x")
    with pytest.raises(errors.SackServerError, match="not a socket"):
        sack.SackServer(keyring, socket_path=plain).bind()
    assert Path(plain).read_text() == "x"


@pytest.mark.parametrize("kw", [{"ttl": 0}, {"ttl": 1.5}, {"request_timeout": 0}, {"max_request": 9},
                                {"max_connections": 0}, {"lookup_workers": 0}])
def test_server_rejects_bad_settings(keyring, sockdir, kw):
    with pytest.raises(errors.BadArgumentError):
        sack.SackServer(keyring, socket_path=os.path.join(sockdir, "bad.socket"), **kw)


def test_runtime_directory_socket(keyring, sockdir):
    rt = os.path.join(sockdir, "rt")
    os.mkdir(rt)
    server = sack.SackServer(keyring, env={"RUNTIME_DIRECTORY": rt})
    assert server.path == os.path.join(rt, "sack.socket")
    server.bind()
    try:
        assert stat.S_ISSOCK(os.stat(server.path).st_mode)
    finally:
        server.close()
    assert not os.path.exists(server.path)


def test_bind_creates_missing_parent_0755(keyring, sockdir):
    path = os.path.join(sockdir, "newdir", "sack.socket")
    k = ThreadKiosk(keyring, path)
    try:
        assert stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o755
        sack.sack_create(0, socket_path=path)
    finally:
        k.close()


# --- create / verify ------------------------------------------------------------

def test_create_signs_for_the_peer(kiosk):
    tok = sack.sack_create(4242, b"\x01\x03\xe8", socket_path=kiosk.path)
    cred = Verifier(kiosk.keyring, verifier_uid=4242).verify(tok)
    assert (cred.uid, cred.gid) == (os.getuid(), os.getgid())
    assert cred.context == "sack"
    assert cred.ruid == 4242
    assert cred.payload == b"\x01\x03\xe8"
    assert cred.cluster == "testcl"
    assert cred.identity is None
    assert cred.ver == PROTOCOL_VERSION
    with pytest.raises(errors.CredentialError):
        Verifier(kiosk.keyring, verifier_uid=4243).verify(tok)


def test_create_without_data_has_no_payload(kiosk):
    cred = Verifier(kiosk.keyring).verify(sack.sack_create(SLURM_AUTH_UID_ANY, socket_path=kiosk.path))
    assert cred.payload is None
    assert cred.ruid == SLURM_AUTH_UID_ANY


def test_create_with_client_ids(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "ids.socket"), use_client_ids=True, ttl=123)
    try:
        cred = Verifier(keyring, use_client_ids=True).verify(sack.sack_create(0, socket_path=k.path))
    finally:
        k.close()
    assert cred.identity == identity_from_user(os.getuid(), os.getgid())
    assert cred.exp - cred.iat == 123


def test_slow_identity_lookup_delays_only_its_caller(keyring, sockdir, monkeypatch):
    """With use_client_ids the passwd/group lookup runs off the loop: while one
    caller's lookup hangs (a stuck directory service), others are served."""
    release, entered = threading.Event(), threading.Event()
    real = sack.server.identity_from_user
    calls = []

    def lookup(uid, gid=None):
        calls.append(uid)
        if len(calls) == 1:  # the first lookup hangs until released
            entered.set()
            assert release.wait(HANG_GUARD)
        return real(uid, gid)

    monkeypatch.setattr(sack.server, "identity_from_user", lookup)
    k = ThreadKiosk(keyring, os.path.join(sockdir, "slowid.socket"), use_client_ids=True)
    try:
        out = {}
        t = threading.Thread(target=lambda: out.setdefault("tok", sack.sack_create(
            0, b"first", socket_path=k.path, timeout=HANG_GUARD)))
        t.start()
        assert entered.wait(HANG_GUARD)
        tok = sack.sack_create(0, b"second", socket_path=k.path, timeout=HANG_GUARD)
        sack.sack_verify(tok, socket_path=k.path, timeout=HANG_GUARD)
        assert "tok" not in out  # the first is still waiting for its lookup
        release.set()
        t.join(HANG_GUARD)
        cred = Verifier(keyring, use_client_ids=True).verify(out["tok"])
        assert cred.payload == b"first" and cred.identity == real(os.getuid(), os.getgid())
    finally:
        release.set()
        k.close()


def test_lookup_outliving_the_deadline_is_dropped(keyring, sockdir, monkeypatch):
    release = threading.Event()
    real = sack.server.identity_from_user

    def stuck(uid, gid=None):
        assert release.wait(HANG_GUARD)
        return real(uid, gid)

    monkeypatch.setattr(sack.server, "identity_from_user", stuck)
    k = ThreadKiosk(keyring, os.path.join(sockdir, "stuckid.socket"), use_client_ids=True,
                    request_timeout=0.3)
    try:
        with pytest.raises(errors.SackCreateRefusedError):  # closed at the deadline, no reply
            sack.sack_create(0, socket_path=k.path, timeout=HANG_GUARD)
        release.set()
        monkeypatch.setattr(sack.server, "identity_from_user", real)
        sack.sack_create(0, socket_path=k.path, timeout=HANG_GUARD)  # the late result was discarded
    finally:
        release.set()
        k.close()


def test_verify_accepts_good_tokens(kiosk):
    sack.sack_verify(sack.sack_create(0, b"d", socket_path=kiosk.path), socket_path=kiosk.path)
    for ruid in (0, SLURM_AUTH_UID_ANY):
        tok = create_credential(kiosk.keyring, uid=1234, gid=99, ruid=ruid)
        sack.sack_verify(tok, socket_path=kiosk.path)
        sack.sack_verify(tok.encode(), socket_path=kiosk.path)


def test_verify_refusals_close_without_reply(kiosk, tmp_path):
    other = Keyring.from_key_bytes(os.urandom(32))
    good = create_credential(kiosk.keyring, uid=5, gid=5)
    bad = [
        create_credential(kiosk.keyring, uid=5, gid=5, ruid=4321),      # for another uid
        create_credential(other, uid=5, gid=5),                          # another key
        create_credential(kiosk.keyring, uid=5, gid=5, now=int(time.time()) - 3600),  # expired
        create_credential(kiosk.keyring, uid=5, gid=5, context="launch"),  # not an RPC context
        good[:-3] + ("A" if good[-3] != "A" else "B") + good[-2:],       # altered signature
        "not.a.token",
    ]
    for tok in bad:
        with pytest.raises(errors.SackVerifyRefusedError) as ei:
            sack.sack_verify(tok, socket_path=kiosk.path)
        assert isinstance(ei.value, errors.CredentialError)
        assert ei.value.slurm_errno == errors.ESLURM_AUTH_CRED_INVALID
        # and on the wire: the kiosk closed with nothing at all
        assert raw_exchange(kiosk.path, sack.encode_verify_request(tok)) == b""
    assert raw_exchange(kiosk.path, sack.encode_verify_request(good)) == b"\0\0\0\0"


def test_create_reply_is_packstr(kiosk):
    reply = raw_exchange(kiosk.path, sack.encode_create_request(0, b"xyz"))
    (n,) = struct.unpack(">I", reply[:4])
    assert n == len(reply) - 4 and reply[-1:] == b"\0" and b"\0" not in reply[4:-1]
    assert Verifier(kiosk.keyring).verify(reply[4:-1].decode()).payload == b"xyz"


def test_client_timeout_and_refusal_errors(sockdir):
    """A socket that accepts but never answers: SackTimeoutError; one that
    closes without a reply: SackCreateRefusedError."""
    path = os.path.join(sockdir, "mute.socket")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(8)
    held = []

    def serve(close):
        c, _ = lsock.accept()
        c.recv(100)
        if close:
            c.close()
        else:
            held.append(c)

    try:
        t = threading.Thread(target=serve, args=(False,))
        t.start()
        with pytest.raises(errors.SackTimeoutError):
            sack.sack_create(0, socket_path=path, timeout=0.3)
        t.join(HANG_GUARD)
        t = threading.Thread(target=serve, args=(True,))
        t.start()
        with pytest.raises(errors.SackCreateRefusedError) as ei:
            sack.sack_create(0, socket_path=path)
        assert ei.value.slurm_errno == errors.ESLURM_AUTH_UNABLE_TO_SIGN
        t.join(HANG_GUARD)
    finally:
        for c in held:
            c.close()
        lsock.close()
        os.unlink(path)


@pytest.mark.parametrize("reply, exc", [
    (b"\0\0", errors.SackProtocolError),                    # truncated length
    (b"\0\0\0\0", errors.SackProtocolError),                # empty token
    (b"\0\0\0\x05abc", errors.SackProtocolError),           # truncated token
    (b"\0\0\0\x03abc", errors.SackProtocolError),           # no NUL
    (b"\x10\0\0\0", errors.SackProtocolError),              # over MAX_REPLY
])
def test_client_rejects_malformed_create_replies(sockdir, reply, exc):
    path = os.path.join(sockdir, "liar.socket")
    lsock = socket.socket(socket.AF_UNIX)
    lsock.bind(path)
    lsock.listen(1)

    def serve():
        c, _ = lsock.accept()
        c.recv(100)
        c.sendall(reply)
        c.close()

    t = threading.Thread(target=serve)
    t.start()
    try:
        with pytest.raises(exc):
            sack.sack_create(0, socket_path=path)
    finally:
        t.join(HANG_GUARD)
        lsock.close()
        os.unlink(path)


# --- robustness -------------------------------------------------------------------

def hdr(version, length, rpc):
    return struct.pack(">HII", version, length, rpc)


MALFORMED = {
    "length below 8": hdr(0x2D00, 7, sack.SACK_CREATE) + b"\0" * 16,
    "length over the cap": hdr(0x2D00, 0xFFFFFFFF, sack.SACK_VERIFY),
    "unknown rpc": hdr(0x2D00, 8, 1008),
    "unknown rpc with body": hdr(0x2D00, 12, 64003) + b"\0\0\0\0",
    "length shorter than body": hdr(0x2D00, 10, sack.SACK_CREATE) + b"\0\0\0\0\0\0\0\0",
    "truncated body then EOF": hdr(0x2D00, 16, sack.SACK_CREATE) + b"\0\0\0\0",
    "packmem past end": hdr(0x2D00, 16, sack.SACK_CREATE) + b"\0\0\0\0\0\0\0\x09",
    "packmem over 1 GiB": hdr(0x2D00, 16, sack.SACK_CREATE) + b"\0\0\0\0\x40\0\0\x01",
    "packstr without NUL": hdr(0x2D00, 15, sack.SACK_VERIFY) + b"\0\0\0\x03abc",
    "packstr NULL": hdr(0x2D00, 12, sack.SACK_VERIFY) + b"\0\0\0\0",
    "trailing bytes": hdr(0x2D00, 17, sack.SACK_CREATE) + b"\0\0\0\0\0\0\0\0X",
    "truncated header": b"\x2d\x00\x00\x00",
    "nothing": b"",
}


@pytest.mark.parametrize("name", sorted(MALFORMED))
def test_malformed_requests_close_without_reply(kiosk, name):
    assert raw_exchange(kiosk.path, MALFORMED[name]) == b""
    assert_alive(kiosk)


def test_huge_declared_length_is_refused_before_the_body(kiosk):
    """The kiosk closes on the header alone: no body byte is ever sent."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(HANG_GUARD)
    s.connect(kiosk.path)
    s.sendall(hdr(0x2D00, 512 * 1024 * 1024, sack.SACK_CREATE))
    assert s.recv(16) == b""
    s.close()
    assert_alive(kiosk)


@pytest.mark.parametrize("version", [0, 1, 0x2700, 0xFFFF])
def test_any_version_is_served_like_slurm(kiosk, version):
    """Slurm's kiosk logs the version and does not check it."""
    tok = sack.sack_create(0, b"v", socket_path=kiosk.path, version=version)
    sack.sack_verify(tok, socket_path=kiosk.path, version=version)


def test_bytes_after_the_request_are_never_read(kiosk):
    """One request per connection: what follows the declared length is left
    unread (not taken as a second request) and the reply still arrives."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(HANG_GUARD)
    s.connect(kiosk.path)
    s.sendall(sack.encode_create_request(0, b"one") + sack.encode_create_request(0, b"two"))
    reply = b""
    while True:
        try:
            chunk = s.recv(65536)
        except ConnectionResetError:  # the kiosk closed with "two" unread
            break
        if not chunk:
            break
        reply += chunk
    s.close()
    (n,) = struct.unpack(">I", reply[:4])
    assert len(reply) == 4 + n
    assert Verifier(kiosk.keyring).verify(reply[4:-1].decode()).payload == b"one"


def test_byte_at_a_time_client_is_served(kiosk):
    req = sack.encode_create_request(0, b"slow")
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(HANG_GUARD)
    s.connect(kiosk.path)
    for i in range(len(req)):
        s.send(req[i:i + 1])
        time.sleep(0.005)
    reply = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        reply += chunk
    s.close()
    assert Verifier(kiosk.keyring).verify(reply[4:-1].decode()).payload == b"slow"


def test_slow_and_silent_clients_do_not_block_others(kiosk):
    """Clients that send half a request and sit, or never send, are cut off at
    the deadline; meanwhile everyone else is served."""
    stuck = []
    for i in range(20):
        s = socket.socket(socket.AF_UNIX)
        s.connect(kiosk.path)
        if i % 2:
            s.sendall(hdr(0x2D00, 100, sack.SACK_CREATE) + b"\0\0")  # length lies: more promised
        stuck.append(s)
    for _ in range(20):
        assert_alive(kiosk)
    for s in stuck:  # all closed by the kiosk's 1 s deadline, without a reply
        s.settimeout(HANG_GUARD)
        assert s.recv(16) == b""
        s.close()
    assert_alive(kiosk)


def test_client_vanishing_mid_request_or_before_reply(kiosk):
    for data in (sack.encode_create_request(0, b"gone")[:7], sack.encode_create_request(0, b"gone")):
        for _ in range(20):
            s = socket.socket(socket.AF_UNIX)
            s.connect(kiosk.path)
            s.sendall(data)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            s.close()
    assert_alive(kiosk)


def test_partial_writes_to_a_slow_reader(kiosk):
    """A reply bigger than the socket buffer goes out as the reader drains it,
    while other clients are served."""
    data = os.urandom(160 * 1024)
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(HANG_GUARD)
    s.connect(kiosk.path)
    s.sendall(sack.encode_create_request(0, data))
    time.sleep(0.2)
    assert_alive(kiosk)  # the kiosk is not stuck writing to s
    reply = b""
    while True:
        chunk = s.recv(8192)
        if not chunk:
            break
        reply += chunk
    s.close()
    (n,) = struct.unpack(">I", reply[:4])
    assert n == len(reply) - 4 > 212992  # more than a unix socket's send buffer
    assert Verifier(kiosk.keyring, max_len=1 << 20).verify(reply[4:-1].decode()).payload == data


@given(st.one_of(
    st.binary(max_size=64),
    st.tuples(st.sampled_from([sack.SACK_CREATE, sack.SACK_VERIFY]), st.integers(0, 40), st.binary(max_size=40))
      .map(lambda t: hdr(0x2D00, t[1], t[0]) + t[2]),
))
def test_fuzzed_requests_never_break_the_kiosk(kiosk, data):
    reply = raw_exchange(kiosk.path, data)
    if reply:  # only a well-formed create with any r_uid/data can get an answer
        body = data[sack.HEADER_LEN:]
        req = sack.decode_create_body(body)
        cred = Verifier(kiosk.keyring, verifier_uid=req.r_uid).verify(reply[4:-1].decode())
        assert cred.payload == (req.data or None)
    assert_alive(kiosk)


def test_max_connections_queue_in_backlog(keyring, sockdir):
    """Two uids (each may hold half of the table) fill it; the rest wait."""
    k = ThreadKiosk(keyring, os.path.join(sockdir, "cap.socket"), max_connections=4, request_timeout=0.5)
    try:
        idle = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.connect(k.path)
            idle.append(s)
        idle += connect_as(NOBODY, k.path, 6)
        seen = set()
        deadline = time.monotonic() + HANG_GUARD
        while 4 not in seen:
            seen.add(k.server.connection_count)
            assert time.monotonic() < deadline
        for _ in range(200):
            seen.add(k.server.connection_count)
            time.sleep(0.001)
        assert max(seen) == 4  # the other four wait in the listen backlog
        # more than the cap are connected but silent; a real client still gets
        # served once their deadlines free slots
        tok = sack.sack_create(0, socket_path=k.path, timeout=HANG_GUARD)
        assert Verifier(keyring).verify(tok).uid == 0
        for s in idle:
            s.close()
    finally:
        k.close()


# --- many concurrent clients against the real daemon (CLI subprocess) -------

def start_daemon(path, keyfile, *extra, preexec_fn=None):
    env = {k: v for k, v in os.environ.items()
           if k not in ("SLURM_CONF", "SLURM_SACK_KEY", "SLURM_SACK_JWKS", "RUNTIME_DIRECTORY")}
    log = tempfile.TemporaryFile()  # not a pipe: a chatty daemon can never block on it
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--socket", path, "--key", str(keyfile),
         "--conf-dir", os.path.dirname(keyfile), *extra], env=env, stderr=log, preexec_fn=preexec_fn)
    proc.log = log
    deadline = time.monotonic() + HANG_GUARD
    while True:
        if proc.poll() is not None:
            log.seek(0)
            raise AssertionError("sackd exited: " + log.read().decode())
        try:
            sack.sack_verify(sack.sack_create(0, socket_path=path), socket_path=path)
            return proc
        except errors.SackConnectError:
            assert time.monotonic() < deadline, "sackd did not come up"
            time.sleep(0.05)


def stop_daemon(proc, path):
    """SIGTERM: exit 0 with the socket removed. Returns the daemon's stderr."""
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(HANG_GUARD)
    proc.log.seek(0)
    err = proc.log.read().decode()
    proc.log.close()
    assert code == 0, err
    assert not os.path.exists(path)
    return err


@pytest.fixture
def daemon(sockdir, keyfile):
    path = os.path.join(sockdir, "d.socket")
    # the tests' clients are all root: give it room for 300 at once
    proc = start_daemon(path, keyfile, "--uid-max-connections", "0=400")
    yield path
    if proc.poll() is None:
        stop_daemon(proc, path)


def test_300_concurrent_clients(daemon, keyring):
    n = 300
    barrier = threading.Barrier(n + 1)
    results = [None] * n
    slow = []
    for _ in range(20):  # slowloris connections held open all along
        s = socket.socket(socket.AF_UNIX)
        s.connect(daemon)
        s.sendall(b"\x2d\x00\x00")
        slow.append(s)

    def client(i):
        try:
            barrier.wait(HANG_GUARD)
            tok = sack.sack_create(i, str(i).encode(), socket_path=daemon, timeout=HANG_GUARD)
            sack.sack_verify(create_credential(keyring, uid=i, gid=i), socket_path=daemon, timeout=HANG_GUARD)
            results[i] = tok
        except Exception as e:  # reported below
            results[i] = e

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    barrier.wait(HANG_GUARD)
    for t in threads:
        t.join(HANG_GUARD)
    for s in slow:
        s.close()
    assert not any(t.is_alive() for t in threads)
    errs = [r for r in results if not isinstance(r, str)]
    assert not errs, errs[:3]
    for i, tok in enumerate(results):
        cred = Verifier(keyring, verifier_uid=i).verify(tok)
        assert (cred.uid, cred.gid, cred.ruid, cred.payload) == (0, 0, i, str(i).encode())


def test_concurrent_client_processes(daemon, keyring):
    """Real processes at once (forked), each with several round trips."""
    pids = []
    for i in range(40):
        pid = os.fork()
        if pid == 0:  # pragma: no cover - child
            code = 1
            try:
                for _ in range(5):
                    tok = sack.sack_create(0, b"p", socket_path=daemon, timeout=HANG_GUARD)
                    sack.sack_verify(tok, socket_path=daemon, timeout=HANG_GUARD)
                code = 0
            finally:
                os._exit(code)
        pids.append(pid)
    codes = [os.waitpid(p, 0)[1] for p in pids]
    assert codes == [0] * len(pids)


def test_fd_exhaustion_pauses_accepts_then_recovers(sockdir, keyfile, keyring):
    """With its file descriptors used up by silent clients the daemon stops
    accepting (accept fails with EMFILE) instead of spinning or dying, and
    serves again once their deadlines close them."""
    import resource

    def low_fd_limit():
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    path = os.path.join(sockdir, "fd.socket")
    proc = start_daemon(path, keyfile, "--timeout", "0.5", preexec_fn=low_fd_limit)
    try:
        idle = []
        for _ in range(120):  # more than the daemon has descriptors
            s = socket.socket(socket.AF_UNIX)
            s.connect(path)
            idle.append(s)
        tok = sack.sack_create(0, b"fd", socket_path=path, timeout=HANG_GUARD)
        assert Verifier(keyring).verify(tok).payload == b"fd"
        for s in idle:
            s.close()
        assert proc.poll() is None
    finally:
        log = stop_daemon(proc, path)
    assert "pausing accepts" in log  # the EMFILE path was taken


# --- a real second uid -----------------------------------------------------------

def run_as(uid, gid, fn):
    """Fork, drop to uid/gid (no supplementary groups), run fn, return its JSON result."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            out = json.dumps(fn()).encode()
        except BaseException as e:
            out = json.dumps({"child_error": repr(e)}).encode()
        with os.fdopen(w, "wb") as f:
            f.write(out)
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        data = f.read()
    os.waitpid(pid, 0)
    result = json.loads(data)
    assert "child_error" not in result, result
    return result


@pytest.fixture
def ids_daemon(sockdir, keyfile):
    """The daemon with use_client_ids, on a socket an unprivileged user can reach."""
    path = os.path.join(sockdir, "ids.socket")
    proc = start_daemon(path, keyfile, "--use-client-ids")
    yield path
    stop_daemon(proc, path)


needs_root = pytest.mark.skipif(os.getuid() != 0, reason="needs root to setuid to an unprivileged user")


@needs_root
def test_second_uid_gets_only_its_own_credentials(ids_daemon, keyring):
    daemon = ids_daemon
    for_root = create_credential(keyring, uid=0, gid=0, ruid=0)
    for_nobody = create_credential(keyring, uid=0, gid=0, ruid=NOBODY)
    for_anyone = create_credential(keyring, uid=0, gid=0, ruid=SLURM_AUTH_UID_ANY)

    def child():
        res = {"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getgroups()], "tokens": {}, "verify": {}}
        for r_uid in (0, NOBODY, SLURM_AUTH_UID_ANY, 1):
            res["tokens"][str(r_uid)] = sack.sack_create(r_uid, b"mine", socket_path=daemon)
        for name, tok in (("root", for_root), ("nobody", for_nobody), ("anyone", for_anyone),
                          ("own_for_root", res["tokens"]["0"]), ("own_for_self", res["tokens"][str(NOBODY)])):
            try:
                sack.sack_verify(tok, socket_path=daemon)
                res["verify"][name] = "ok"
            except errors.SackVerifyRefusedError:
                res["verify"][name] = "refused"
        return res

    res = run_as(NOBODY, NOBODY, child)
    assert res["ids"] == [NOBODY, NOBODY, NOBODY, []]
    for r_uid, tok in res["tokens"].items():
        cred = Verifier(keyring, verifier_uid=int(r_uid), use_client_ids=True).verify(tok)
        assert (cred.uid, cred.gid) == (NOBODY, NOBODY)  # whatever it asked
        assert cred.ruid == int(r_uid) and cred.context == "sack" and cred.payload == b"mine"
        assert cred.identity == identity_from_user(NOBODY, NOBODY)
    assert res["verify"] == {"root": "refused", "nobody": "ok", "anyone": "ok",
                             "own_for_root": "refused", "own_for_self": "ok"}
    # the token nobody asked for root is good for root
    sack.sack_verify(res["tokens"]["0"], socket_path=daemon)
    with pytest.raises(errors.SackVerifyRefusedError):
        sack.sack_verify(res["tokens"][str(NOBODY)], socket_path=daemon)


@needs_root
def test_uid_without_passwd_entry_is_signed_without_id(ids_daemon, keyring):
    """Slurm signs without the "id" object when the identity lookup fails."""
    import pwd
    uid = next(u for u in range(54321, 60000) if not _has_passwd(pwd, u))
    res = run_as(uid, uid, lambda: {"token": sack.sack_create(0, socket_path=ids_daemon)})
    cred = Verifier(keyring, use_client_ids=True).verify(res["token"])
    assert (cred.uid, cred.gid, cred.identity) == (uid, uid, None)


def _has_passwd(pwd, uid):
    try:
        pwd.getpwuid(uid)
        return True
    except KeyError:
        return False


# --- daemon lifecycle: SIGHUP reload, SIGTERM ------------------------------------

def test_sighup_reloads_keys_without_dropping_the_socket(sockdir):
    keyfile = write_key(Path(sockdir) / "reload.key", os.urandom(32))
    old = load_keys(keyfile)
    path = os.path.join(sockdir, "hup.socket")
    proc = start_daemon(path, keyfile, "--use-client-ids")
    try:
        ino = os.stat(path).st_ino
        old_tok = sack.sack_create(0, socket_path=path)
        Verifier(old).verify(old_tok)
        # a client mid-request across the reload
        pending = socket.socket(socket.AF_UNIX)
        pending.settimeout(HANG_GUARD)
        pending.connect(path)
        req = sack.encode_create_request(0, b"across")
        pending.sendall(req[:5])

        write_key(keyfile, os.urandom(32))
        new = load_keys(keyfile)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + HANG_GUARD
        while True:
            tok = sack.sack_create(0, socket_path=path)
            try:
                cred = Verifier(new, use_client_ids=True).verify(tok)
                break
            except errors.SignatureError:
                assert time.monotonic() < deadline, "keys were not reloaded"
                time.sleep(0.05)
        assert cred.identity == identity_from_user(0, 0)
        assert os.stat(path).st_ino == ino  # same socket
        with pytest.raises(errors.SackVerifyRefusedError):
            sack.sack_verify(old_tok, socket_path=path)
        pending.sendall(req[5:])
        reply = pending.recv(65536)
        pending.close()
        assert Verifier(new).verify(reply[4:-1].decode()).payload == b"across"
        # a reload that fails keeps the current keys
        os.chmod(keyfile, 0o644)
        proc.send_signal(signal.SIGHUP)
        for _ in range(5):
            Verifier(new).verify(sack.sack_create(0, socket_path=path))
    finally:
        stop_daemon(proc, path)


def jwks_doc(*keys):
    return json.dumps({"keys": [
        dict({"kty": "oct", "alg": "HS256", "kid": kid,
              "k": base64.urlsafe_b64encode(secret).rstrip(b"=").decode()}, **extra)
        for kid, secret, extra in keys]})


def test_jwks_kiosk_signs_with_default_kid_and_reloads():
    d = short_dir()
    try:
        ka, kb = os.urandom(32), os.urandom(32)
        jwks = Path(d) / "slurm.jwks"
        write_key(jwks, jwks_doc(("a", ka, {}), ("b", kb, {"use": "default"})).encode())
        path = os.path.join(d, "jwks.socket")
        proc = start_daemon(path, Path(d) / "slurm.key", "--jwks", str(jwks))  # no slurm.key: jwks wins
        try:
            tok = sack.sack_create(0, socket_path=path)
            header = json.loads(base64.urlsafe_b64decode(tok.split(".")[0] + "=="))
            assert header["kid"] == "b"
            keys = Keyring.from_jwks(jwks.read_text())
            assert Verifier(keys).verify(tok).kid == "b"
            by_a = create_credential(Keyring.from_jwks(jwks_doc(("a", ka, {}))), uid=1, gid=1)
            sack.sack_verify(by_a, socket_path=path)  # any loaded kid verifies
            write_key(jwks, jwks_doc(("b", kb, {})).encode())  # "a" retired
            proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + HANG_GUARD
            while True:
                try:
                    sack.sack_verify(by_a, socket_path=path)
                except errors.SackVerifyRefusedError:
                    break
                assert time.monotonic() < deadline, "jwks was not reloaded"
                time.sleep(0.05)
            sack.sack_verify(tok, socket_path=path)
        finally:
            stop_daemon(proc, path)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_cli_sackd_bad_key_exits_3(sockdir):
    bad = Path(sockdir) / "open.key"
    bad.write_bytes(os.urandom(32))
    os.chmod(bad, 0o644)
    proc = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--socket",
                           os.path.join(sockdir, "never.socket"), "--key", str(bad)],
                          capture_output=True, timeout=HANG_GUARD)
    assert proc.returncode == 3, proc.stderr
    assert not os.path.exists(os.path.join(sockdir, "never.socket"))


def test_cli_help_lists_sackd():
    from slurmauth_fast import cli
    from slurmauth_fast.cli import sackd as sack_cli
    assert "sackd" in cli.build_parser().format_help()
    assert sack_cli.ROLES == sack.SERVER_ROLES


@pytest.mark.parametrize("argv", [["--ttl", "0"], ["--ttl", "1.5"], ["--role", "slurmd"], ["--timeout", "x"],
                                  ["--timeout", "nan"], ["--read-timeout", "0"], ["--max-connections", "0"],
                                  ["--max-connections-per-uid", "0"], ["--uid-max-connections", "0"],
                                  ["--uid-max-connections", "x=3"], ["--uid-max-connections", "0=0"],
                                  ["--log-interval", "-1"],
                                  ["--max-connections", "8", "--max-connections-per-uid", "5"],
                                  ["--max-connections", "8", "--uid-max-connections", "0=5"]])
def test_cli_sackd_usage_errors(argv, keyfile, sockdir):
    proc = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--key", str(keyfile),
                           "--socket", os.path.join(sockdir, "usage.socket"), *argv],
                          capture_output=True, timeout=HANG_GUARD)
    assert proc.returncode == 2, proc.stderr
    assert not os.path.exists(os.path.join(sockdir, "usage.socket"))


def test_cli_sackd_limits(sockdir, keyfile):
    """The kiosk's limits from the command line: a silent client is cut off at
    --read-timeout, root's connections over --max-connections-per-uid are
    closed at once, and a real client is still served."""
    path = os.path.join(sockdir, "lim.socket")
    proc = start_daemon(path, keyfile, "--read-timeout", "0.3", "--max-connections", "16",
                        "--max-connections-per-uid", "2", "--log-interval", "0")
    try:
        held = []
        for _ in range(2):
            s = socket.socket(socket.AF_UNIX)
            s.settimeout(HANG_GUARD)
            s.connect(path)
            held.append(s)
        time.sleep(0.05)
        over = socket.socket(socket.AF_UNIX)
        over.settimeout(HANG_GUARD)
        t0 = time.monotonic()
        over.connect(path)
        assert over.recv(16) == b""  # at once: root holds its 2
        assert time.monotonic() - t0 < 0.3
        for s in held:  # cut off by the 0.3 s read deadline
            assert s.recv(16) == b""
            s.close()
        assert time.monotonic() - t0 < 5
        sack.sack_verify(sack.sack_create(0, socket_path=path), socket_path=path)
    finally:
        err = stop_daemon(proc, path)
    assert "over its cap of 2 connections" in err
