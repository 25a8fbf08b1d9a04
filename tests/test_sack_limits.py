"""The SACK kiosk under a local user's attack: idle connections held by one
uid, connections that never finish their request, floods of garbage.

Real unix sockets, the kiosk on a thread (as in test_sack.py); connections of
another uid are opened by a forked child that dropped to ``nobody``
(``munged.run_as``) and handed back over SCM_RIGHTS, so SO_PEERCRED names
nobody while this process holds the sockets.
"""
import logging
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

from munged import connect_as
from test_sack import ThreadKiosk
from slurmauth_fast import errors, sack
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

NOBODY = 65534
HANG_GUARD = 60  # seconds: only to turn a hang into a failure
SACK_LOG = "slurmauth_fast.sack"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to open connections as nobody")


@pytest.fixture(scope="module")
def sockdir():
    import tempfile
    d = tempfile.mkdtemp(prefix="sackl-", dir="/tmp")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def keyring(sockdir):
    path = Path(sockdir) / "slurm.key"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(os.urandom(32))
    return Keyring.load(key_path=str(path), conf_dir=sockdir, env={})


def timed_create(path, timeout=5.0):
    t0 = time.monotonic()
    tok = sack.sack_create(0, b"good", socket_path=path, timeout=timeout)
    return tok, time.monotonic() - t0


def test_idle_connections_of_one_uid_do_not_delay_another(keyring, sockdir):
    """nobody holds 300 idle connections, more than the kiosk's whole table:
    only its per-uid share is kept, and root's request is answered at once."""
    k = ThreadKiosk(keyring, os.path.join(sockdir, "idle.socket"), max_connections=128)
    idle = []
    try:
        idle = connect_as(NOBODY, k.path, 300)
        tok, took = timed_create(k.path)
        assert Verifier(keyring).verify(tok).payload == b"good"
        assert took < 1.0, f"a good request waited {took:.1f}s behind another uid's idle connections"
        deadline = time.monotonic() + HANG_GUARD
        while k.server.stats["over_uid_cap"] < 300 - 64:  # nobody keeps its share, no more
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert k.server.stats["over_uid_cap"] == 300 - 64
    finally:
        for s in idle:
            s.close()
        k.close()


def test_over_the_uid_cap_is_closed_at_once_and_counted(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "cap.socket"), max_connections=64,
                    max_connections_per_uid=8)
    idle = []
    try:
        idle = connect_as(NOBODY, k.path, 40)
        deadline = time.monotonic() + HANG_GUARD
        while k.server.stats["over_uid_cap"] < 32:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert k.server.stats["over_uid_cap"] == 32
        assert k.server.connection_count == 8
        closed = 0
        for s in idle:  # 32 of them see EOF now, long before any deadline
            s.settimeout(0.05)
            try:
                closed += s.recv(1) == b""
            except socket.timeout:
                pass
        assert closed == 32
        # root has its own share, and its own requests are served meanwhile
        for _ in range(20):
            tok, took = timed_create(k.path)
            assert took < 1.0
    finally:
        for s in idle:
            s.close()
        k.close()


@pytest.mark.parametrize("kw", [{"max_connections_per_uid": 0}, {"read_timeout": 0},
                                {"max_connections": 100, "max_connections_per_uid": 51},
                                {"max_connections": 100, "uid_max_connections": {0: 60}},
                                {"log_interval": -1}])
def test_limit_settings_are_checked(keyring, sockdir, kw):
    """One uid can never hold more than half of the table."""
    with pytest.raises(errors.BadArgumentError):
        sack.SackServer(keyring, socket_path=os.path.join(sockdir, "bad.socket"), **kw)


def test_defaults_keep_a_uid_well_below_the_global_cap(keyring, sockdir):
    s = sack.SackServer(keyring, socket_path=os.path.join(sockdir, "def.socket"))
    assert s.max_connections_per_uid == sack.DEFAULT_MAX_CONNECTIONS_PER_UID == 64
    assert s.max_connections == 1024
    assert s.read_timeout == sack.DEFAULT_READ_TIMEOUT <= 2.0
    small = sack.SackServer(keyring, socket_path=os.path.join(sockdir, "def.socket"), max_connections=10)
    assert small.max_connections_per_uid == 5


def test_uid_override(keyring, sockdir):
    """A uid may be given its own cap (e.g. SlurmUser)."""
    k = ThreadKiosk(keyring, os.path.join(sockdir, "ovr.socket"), max_connections=64,
                    max_connections_per_uid=4, uid_max_connections={NOBODY: 16})
    idle = []
    try:
        idle = connect_as(NOBODY, k.path, 20)
        deadline = time.monotonic() + HANG_GUARD
        while k.server.stats["over_uid_cap"] < 4:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert k.server.connection_count == 16
    finally:
        for s in idle:
            s.close()
        k.close()


def test_connections_answered_at_accept_give_their_uid_slot_back(keyring, sockdir):
    """A request already waiting when its connection is accepted is answered
    at once, without the connection being watched; it still takes its uid's
    slot while served and gives it back: with a cap of one connection per uid,
    every request in a row is served, whether it was there at accept or came
    later, and nothing is left held."""
    k = ThreadKiosk(keyring, os.path.join(sockdir, "fast.socket"), max_connections=2,
                    max_connections_per_uid=1)
    try:
        for i in range(60):
            if i % 10 == 9:  # this one connects first and sends later: it waits, watched
                late = socket.socket(socket.AF_UNIX)
                late.settimeout(HANG_GUARD)
                late.connect(k.path)
                time.sleep(0.05)
                late.sendall(sack.encode_create_request(0, b"late"))
                head = late.recv(4)
                assert len(head) == 4
                late.close()
                continue
            tok = sack.sack_create(0, b"good", socket_path=k.path, timeout=HANG_GUARD)
            assert Verifier(keyring).verify(tok, context="sack").payload == b"good"
        assert k.server.stats["over_uid_cap"] == 0
        deadline = time.monotonic() + HANG_GUARD
        while k.server.connection_count:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert k.server._per_uid == {}
    finally:
        k.close()


def test_idle_connection_is_dropped_after_the_read_deadline(keyring, sockdir):
    """The default read deadline is short; the 10 s request timeout is not what
    cuts off a silent client."""
    k = ThreadKiosk(keyring, os.path.join(sockdir, "rd.socket"))
    try:
        silent = socket.socket(socket.AF_UNIX)
        half = socket.socket(socket.AF_UNIX)
        t0 = time.monotonic()
        silent.connect(k.path)
        half.connect(k.path)
        half.sendall(sack.encode_create_request(0, b"x")[:9])
        for s in (silent, half):
            s.settimeout(HANG_GUARD)
            assert s.recv(16) == b""
            s.close()
        took = time.monotonic() - t0
        assert took < 2.0 + 1.5, f"idle connections were kept {took:.1f}s"
        k.wait_stat("read_timeouts", 2)
    finally:
        k.close()


def test_read_timeout_is_configurable_and_bounds_only_the_request(keyring, sockdir):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "rd2.socket"), read_timeout=0.3, request_timeout=5.0)
    try:
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(HANG_GUARD)
        t0 = time.monotonic()
        s.connect(k.path)
        assert s.recv(16) == b""
        assert time.monotonic() - t0 < 2.0
        s.close()
        tok, _ = timed_create(k.path)  # a real client finishes well within it
        assert Verifier(keyring).verify(tok).payload == b"good"
    finally:
        k.close()


class Lines(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def sack_log():
    logger = logging.getLogger(SACK_LOG)
    h = Lines()
    old = logger.level
    logger.setLevel(logging.INFO)
    logger.addHandler(h)
    yield h
    logger.removeHandler(h)
    logger.setLevel(old)


def garbage(path, n, rpc=9999):
    bad = bytes.fromhex("2d00") + (8).to_bytes(4, "big") + rpc.to_bytes(2, "big") + b"\0" * 6
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(HANG_GUARD)
        s.connect(path)
        s.sendall(bad)
        try:
            assert s.recv(16) == b""
        except ConnectionResetError:  # closed with the rest unread
            pass
        s.close()


def test_garbage_flood_logs_a_bounded_number_of_lines(keyring, sockdir, sack_log):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "gb.socket"))
    try:
        garbage(k.path, 300)
        tok, _ = timed_create(k.path)
        Verifier(keyring).verify(tok)
    finally:
        k.close()
    unexpected = [m for m in sack_log.lines if "unexpected rpc" in m]
    assert 1 <= len(unexpected) <= 2, len(unexpected)


def test_suppressed_lines_are_counted(keyring, sockdir, sack_log):
    k = ThreadKiosk(keyring, os.path.join(sockdir, "gb2.socket"), log_interval=0.5)
    try:
        garbage(k.path, 50)
        time.sleep(0.6)
        garbage(k.path, 1)
    finally:
        k.close()
    unexpected = [m for m in sack_log.lines if "unexpected rpc" in m]
    assert len(unexpected) == 2, unexpected
    assert "49 more like this" in unexpected[1]
    assert k.server.stats["bad_requests"] == 51
