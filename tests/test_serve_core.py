"""The C serving core (csrc/serve.c) through its binding, over real sockets:
127.0.0.1 (and other loopback addresses) and unix sockets in tmp_path. A
driver thread polls the core and answers events with a small policy given by
each test; clients are plain blocking sockets in the test thread."""
import base64
import errno
import hashlib
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast._bindings import serve as S
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.exceptions import BadArgumentError
from slurmauth_fast.rpc import (AUTH_JWT, AUTH_MUNGE, AUTH_NONE, NO_AUTH_CRED, REQUEST_PING,
                                RESPONSE_SLURM_RC, body_hash_payload, pack_frame, parse_frame)

KEY = b"serve core test key, 32 bytes!!"
UID, GID = 1000, 1001


@pytest.fixture(scope="module")
def keyring():
    return keys.Keyring.from_key_bytes(KEY)


def signed(keyring, body=b"", msg_type=REQUEST_PING, key=None, **kw):
    kr = keys.Keyring.from_key_bytes(key) if key else keyring
    cred = dict(uid=UID, gid=GID, host="client", ruid=os.getuid(),
                payload=body_hash_payload(body, msg_type))
    cred.update(kw)
    return pack_frame(msg_type, body, credential=tokens.create_credential(kr, **cred))


def rc_reply(rc, version=0x2D00):
    return pack_frame(RESPONSE_SLURM_RC, struct.pack(">I", rc), flags=0x0044, version=version)


def recv_reply(sock, timeout=5.0):
    """One length-prefixed reply, or b"" when the server closed without one."""
    sock.settimeout(timeout)
    data = b""
    try:
        while len(data) < 4 or len(data) < 4 + struct.unpack(">I", data[:4])[0]:
            chunk = sock.recv(65536)
            if not chunk:
                return b"" if len(data) < 4 else data
            data += chunk
    except ConnectionResetError:
        return data
    return data


def closed_by_server(sock, timeout=5.0):
    """True when the server closes the connection (EOF or reset) in time."""
    sock.settimeout(timeout)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


class Driver:
    """Polls a ServeCore in a thread; on_event(core, ev) answers. Every call
    into the core happens in that thread; stats are snapshotted after each
    poll."""

    def __init__(self, keyring=None, on_event=None, verifier_kw=None, set_keys=True, **config):
        self.core = S.ServeCore(**config)
        if set_keys and keyring is not None:
            self.core.set_keys(*FrameVerifier(tokens.Verifier(keyring, **(verifier_kw or {}))).c_state())
        self.on_event = on_event or answer_ping
        self.events = []
        self.stats = self.core.stats()
        self.calls = []   # functions to run in the driver thread
        self._stop = False
        self._thread = None
        self.error = None

    def start(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def call(self, fn):
        done = threading.Event()
        box = []
        self.calls.append((fn, box, done))
        self.core.wakeup()
        assert done.wait(5)
        if isinstance(box[0], Exception):
            raise box[0]
        return box[0]

    def sync(self):
        """Stats once the driver thread has handled everything polled so far."""
        self.call(lambda core: None)
        return self.stats

    def _run(self):
        try:
            while not self._stop:
                for ev in self.core.poll(50):
                    self.events.append(ev)
                    self.on_event(self.core, ev)
                while self.calls:
                    fn, box, done = self.calls.pop(0)
                    try:
                        box.append(fn(self.core))
                    except Exception as e:
                        box.append(e)
                    self.stats = self.core.stats()
                    done.set()
                self.stats = self.core.stats()
        except BaseException as e:   # surfaced by stop()
            self.error = e

    def wait_stat(self, name, value, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.stats[name] >= value:
                return True
            time.sleep(0.01)
        return False

    def stop(self):
        self._stop = True
        self.core.wakeup()
        self._thread.join(5)
        self.core.free()
        if self.error:
            raise self.error


def answer_ping(core, ev):
    if ev.kind in (S.EV_VERIFIED, S.EV_UNVERIFIED, S.EV_REFUSED, S.EV_FORWARD_ERROR):
        core.reply(ev.conn_id, rc_reply(0 if ev.kind == S.EV_VERIFIED else 1007, ev.version or 0x2D00))


@pytest.fixture
def driver(keyring):
    made = []

    def make(**kw):
        d = Driver(keyring, **kw).start()
        made.append(d)
        return d
    yield make
    for d in made:
        d.stop()


def tcp_client(port, host="127.0.0.1", source=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if source:
        s.bind((source, 0))
    s.connect((host, port))
    return s


# ---- verified requests ------------------------------------------------------------------

@pytest.mark.parametrize("transport", ["tcp", "unix"])
def test_verified_ping_reaches_python_with_identity_and_peer(keyring, driver, tmp_path, transport):
    d = driver()
    frame = signed(keyring)
    if transport == "tcp":
        port = d.call(lambda c: c.listen_tcp("127.0.0.1", 0))
        s = tcp_client(port)
    else:
        path = str(tmp_path / "core.sock")
        d.call(lambda c: c.listen_unix(path))
        s = socket.socket(socket.AF_UNIX)
        s.connect(path)
    s.sendall(frame)
    assert recv_reply(s) == rc_reply(0)
    assert closed_by_server(s)          # one RPC per connection
    ev = d.events[0]
    assert ev.kind == S.EV_VERIFIED and ev.status == 0
    assert (ev.uid, ev.gid, ev.msg_type, ev.version) == (UID, GID, REQUEST_PING, 0x2D00)
    assert ev.plugin == 103 and ev.frame == frame
    assert ev.credential == parse_frame(frame).auth_cred
    if transport == "tcp":
        assert ev.peer == s.getsockname()
    else:
        assert ev.peer is None and ev.peer_family == S.AF_UNIX
    st = d.sync()
    assert st["frames_verified"] == 1 and st["conns_open"] == 0


def test_body_is_read_and_hash_checked_after_early_verification(keyring, driver):
    d = driver(max_frame=4 << 20)
    port = d.call(lambda c: c.listen_tcp())
    body = os.urandom(1 << 20)
    frame = signed(keyring, body=body, msg_type=2001)
    s = tcp_client(port)
    s.sendall(frame)
    assert recv_reply(s) == rc_reply(0)
    assert d.events[0].body == body and d.events[0].frame == frame
    # the same credential over an altered body: refused by the body hash (rc 1007)
    tampered = frame[:-1] + bytes([frame[-1] ^ 1])
    s = tcp_client(port)
    s.sendall(tampered)
    assert recv_reply(s) == rc_reply(1007)
    assert d.wait_stat("frames_refused", 1) and len(d.events) == 1


def test_identities_come_up_until_approved(keyring, driver):
    """A policy that reads "id": a token carrying one comes up with objects == OBJ_ID and the
    SHA-256 of the raw object; once the driver approves that digest, the same "id" bytes stay
    in C (no objects), and other bytes still come up. Without "id", objects is 0."""
    ident = {"name": "u", "gecos": "", "dir": "/", "shell": "/bin/sh", "gids": [1, 2]}
    other = dict(ident, gids=[1, 3])
    d = driver(verifier_kw={"use_client_ids": True})
    port = d.call(lambda c: c.listen_tcp())

    def send(frame):
        s = tcp_client(port)
        s.sendall(frame)
        assert recv_reply(s) == rc_reply(0)
        return d.events[-1]
    raw = json.dumps(ident, separators=(",", ":"), sort_keys=True).encode()
    with_id = signed(keyring, extra={"id": ident})
    claims_part = parse_frame(with_id).auth_cred.split(b".")[1]
    assert b'"id":' + raw in base64.urlsafe_b64decode(claims_part + b"==")   # the object's bytes
    ev = send(with_id)
    assert ev.objects == S.OBJ_ID and ev.id_digest == hashlib.sha256(raw).digest()
    assert send(signed(keyring)).objects == 0
    d.call(lambda c: c.approve_identity(ev.id_digest))
    assert send(signed(keyring, extra={"id": ident}, now=int(time.time()) - 5)).objects == 0
    ev2 = send(signed(keyring, extra={"id": other}))
    assert ev2.objects == S.OBJ_ID and ev2.id_digest != ev.id_digest
    for bad in (b"", b"x" * 31, bytearray(32)):
        with pytest.raises(ValueError):
            d.call(lambda c: c.approve_identity(bad))


# ---- refusals in C ------------------------------------------------------------------------

def test_forged_credential_refused_in_c_and_counted(keyring, driver):
    d = driver()
    port = d.call(lambda c: c.listen_tcp())
    forged = signed(keyring, key=b"another key, not the server's!!!")
    for _ in range(5):
        s = tcp_client(port)
        s.sendall(forged)
        assert recv_reply(s) == rc_reply(1007)
    assert d.wait_stat("refused_answered", 5)
    assert d.stats["frames_refused"] == 5 and d.events == []


def test_refuse_modes_close_and_report(keyring, driver):
    forged = signed(keyring, key=b"another key, not the server's!!!")
    d = driver(refuse_mode=S.REFUSE_CLOSE)
    port = d.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(forged)
    assert recv_reply(s) == b""
    assert d.wait_stat("frames_refused", 1) and d.events == []

    d2 = driver(refuse_mode=S.REFUSE_REPORT)
    port = d2.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(forged)
    assert recv_reply(s) == rc_reply(1007)      # answered by the driver this time
    assert [(e.kind, e.status) for e in d2.events] == [(S.EV_REFUSED, lib.SA_E_BAD_SIGNATURE)]


def test_forged_1mib_frame_refused_after_header_and_auth_only(keyring, driver):
    d = driver(max_frame=4 << 20)
    port = d.call(lambda c: c.listen_tcp())
    body = b"\0" * (1 << 20)
    forged = signed(keyring, body=body, msg_type=2001, key=b"another key, not the server's!!!")
    head = forged[:len(forged) - len(body)]
    s = tcp_client(port)
    s.sendall(head)                         # the body is never sent
    assert recv_reply(s) == rc_reply(1007)
    d.sync()
    assert d.stats["bytes_read"] == len(head) < 1024
    assert d.stats["buffered_high"] <= 64 * 1024   # never a frame-sized buffer

    # a good credential with the same shape waits for its body
    good = signed(keyring, body=body, msg_type=2001)
    s = tcp_client(port)
    s.sendall(good[:len(head)])
    time.sleep(0.3)
    s.setblocking(False)
    with pytest.raises(BlockingIOError):
        s.recv(1)
    s.setblocking(True)
    s.sendall(good[len(head):])
    assert recv_reply(s) == rc_reply(0)


def test_missing_keys_refuse_every_auth_slurm_frame(keyring, driver):
    d = driver(set_keys=False)
    port = d.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(1007)
    # keys swapped in between polls take effect at once
    d.call(lambda c: c.set_keys(*FrameVerifier(tokens.Verifier(keyring)).c_state()))
    s = tcp_client(port)
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(0)


# ---- other plugins -------------------------------------------------------------------------

@pytest.mark.parametrize("plugin,cred,user", [
    (AUTH_MUNGE, b"MUNGE:AwQDAAAfake:", None),
    (AUTH_JWT, b"eyJhbGciOiJIUzI1NiJ9.e30.sig", b"alice"),
    (AUTH_NONE, None, None),
    (None, None, None),                     # NO_AUTH_CRED: no auth section at all
])
def test_other_plugins_handed_up_unverified(keyring, driver, plugin, cred, user):
    d = driver()
    port = d.call(lambda c: c.listen_tcp())
    body = b"some body"
    if plugin is None:
        frame = pack_frame(REQUEST_PING, body, flags=NO_AUTH_CRED)
    else:
        frame = pack_frame(REQUEST_PING, body, credential=cred, plugin=plugin, username=user)
    s = tcp_client(port)
    s.sendall(frame)
    assert recv_reply(s) == rc_reply(1007)      # answer_ping answers unverified with 1007
    ev = d.events[0]
    assert ev.kind == S.EV_UNVERIFIED and ev.uid == 0
    assert ev.plugin == (plugin or 0) and ev.frame == frame and ev.body == body
    assert ev.credential == cred
    if user:
        assert ev.frame[ev.user_off:ev.user_off + ev.user_len - 1] == user
    st = d.sync()
    assert st["frames_unverified"] == 1 and st["frames_verified"] == 0


# ---- partial writes, deadlines, malformed frames ---------------------------------------------

def test_large_reply_to_a_slow_reader_is_written_whole(keyring, driver):
    big = os.urandom(8 << 20)
    reply = struct.pack(">I", len(big)) + big

    def on_event(core, ev):
        core.reply(ev.conn_id, reply)
    d = driver(on_event=on_event)
    port = d.call(lambda c: c.listen_tcp())
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.connect(("127.0.0.1", port))
    s.sendall(signed(keyring))
    time.sleep(0.3)                  # the core meets a full socket buffer: EPOLLOUT continues
    got = bytearray()
    s.settimeout(10)
    while len(got) < len(reply):
        chunk = s.recv(65536)
        assert chunk
        got += chunk
        if len(got) < (1 << 20):
            time.sleep(0.001)
    assert bytes(got) == reply
    assert closed_by_server(s)
    assert d.sync()["bytes_written"] == len(reply)


def test_slow_clients_hit_the_deadlines(keyring, driver):
    d = driver(head_ms=200, body_ms=300)
    port = d.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(b"\0\0")               # half a length prefix, then nothing
    t0 = time.monotonic()
    assert closed_by_server(s)
    assert 0.15 < time.monotonic() - t0 < 3
    assert d.sync()["drop_head_timeout"] == 1

    frame = signed(keyring, body=b"x" * 5000, msg_type=2001)
    s = tcp_client(port)
    s.sendall(frame[:-100])          # header, credential, most of the body
    assert closed_by_server(s)
    assert d.wait_stat("drop_body_timeout", 1) and d.events == []


def test_oversized_and_malformed_frames_are_closed_unanswered(keyring, driver):
    d = driver(max_frame=64 * 1024, max_head=2048)
    port = d.call(lambda c: c.listen_tcp())
    good = signed(keyring)
    cases = {
        "drop_too_large": struct.pack(">I", 64 * 1024 + 1) + b"\0" * 32,
        # a token packstr claiming 10 KB: the header+auth section cannot end in max_head
        "drop_head_long": pack_frame(REQUEST_PING, b"", credential=b"a" * 10000),
    }
    for stat, data in cases.items():
        s = tcp_client(port)
        s.sendall(data)
        assert recv_reply(s) == b"", stat
        assert d.wait_stat(stat, 1), stat
    f = parse_frame(good)
    malformed = [
        good[:4] + b"\x10\x00" + good[6:],                       # version 0x1000
        struct.pack(">I", len(good) - 4 + 3) + good[4:] + b"abc",  # bytes after the body
        good[:4] + good[4:8] + b"\x00\x00\x00\x00\x00\x09" + good[14:],  # msg 0, body_length 9
    ]
    assert f.msg_type == REQUEST_PING
    for k, data in enumerate(malformed):
        s = tcp_client(port)
        s.sendall(data)
        assert recv_reply(s) == b"", k
    assert d.wait_stat("frames_malformed", len(malformed))
    assert d.events == [] and d.sync()["frames_verified"] == 0
    s = tcp_client(port)
    s.sendall(b"\0\0\0\x04ab")       # a frame that ends inside its header
    s.shutdown(socket.SHUT_WR)
    assert recv_reply(s) == b""


def test_keep_alive_reads_the_next_frame_already_buffered(keyring, driver):
    def on_event(core, ev):
        core.reply(ev.conn_id, rc_reply(0), close_after=False)
    d = driver(on_event=on_event)
    port = d.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(signed(keyring) + signed(keyring))      # both frames in one write
    got = b""
    s.settimeout(5)
    while len(got) < 48:
        chunk = s.recv(100)
        assert chunk
        got += chunk
    assert got == rc_reply(0) * 2        # (recv_reply could take both at once)
    assert d.sync()["frames_verified"] == 2


# ---- load and caps ------------------------------------------------------------------------------

def test_250_concurrent_clients(keyring, driver):
    d = driver(max_per_ip=0)
    port = d.call(lambda c: c.listen_tcp())
    frame = signed(keyring)
    socks = [tcp_client(port) for _ in range(250)]
    for s in socks:
        s.sendall(frame)
    for s in socks:
        assert recv_reply(s) == rc_reply(0)
        s.close()
    assert d.wait_stat("frames_verified", 250)
    st = d.sync()
    assert st["conns_high"] >= 2 and st["drop_conn_cap"] == 0


def test_connection_cap_and_per_ip_cap(keyring, driver):
    d = driver(max_conns=4, max_per_ip=0, head_ms=10000)
    port = d.call(lambda c: c.listen_tcp())
    held = [tcp_client(port) for _ in range(4)]
    for s in held:
        s.sendall(b"\0")              # accepted and waiting for the rest
    assert d.wait_stat("conns_open", 4)
    extra = tcp_client(port)
    extra.sendall(signed(keyring))
    assert closed_by_server(extra)
    assert d.wait_stat("drop_conn_cap", 1)
    held.pop().close()
    assert d.wait_stat("drop_peer_closed", 1)
    s = tcp_client(port)
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(0)

    d2 = driver(max_per_ip=2, head_ms=10000)
    port = d2.call(lambda c: c.listen_tcp("0.0.0.0", 0))
    held2 = [tcp_client(port) for _ in range(2)]
    for s in held2:
        s.sendall(b"\0")
    assert d2.wait_stat("conns_open", 2)
    s = tcp_client(port)
    s.sendall(signed(keyring))
    assert closed_by_server(s)
    assert d2.wait_stat("drop_ip_cap", 1)
    s = tcp_client(port, source="127.0.0.2")       # another address still gets in
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(0)
    assert d2.events[0].peer[0] == "127.0.0.2"


EMFILE_SERVER = r"""
import json, os, resource, sys
sys.path[:0] = [{tests!r}]
from test_serve_core import Driver, answer_ping
from slurmauth_fast import keys
kr = keys.Keyring.from_key_bytes({key!r})
d = Driver(kr, head_ms=20000, max_per_ip=0)
port = d.core.listen_tcp()
nfd = len(os.listdir("/proc/self/fd"))
resource.setrlimit(resource.RLIMIT_NOFILE, (nfd + 6, nfd + 6))
d.start()
print(port, flush=True)
sys.stdin.readline()
print(json.dumps(d.sync()), flush=True)
d._stop = True
d.core.wakeup()
d._thread.join(5)
"""


def test_emfile_accepts_and_closes_instead_of_spinning(keyring, tmp_path):
    script = EMFILE_SERVER.format(tests=os.path.dirname(__file__), key=KEY)
    p = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    try:
        port = int(p.stdout.readline())
        held = []
        for _ in range(12):               # more than the descriptors the server has left
            s = tcp_client(port)
            s.sendall(b"\0")
            held.append(s)
        refused = []
        end = time.monotonic() + 10
        while not refused and time.monotonic() < end:
            refused = [s for s in held if closed_by_server(s, timeout=0.1)]
        assert refused                     # accepted and closed, not left in the backlog
        for s in held:
            s.close()
        time.sleep(0.3)
        s = tcp_client(port)               # descriptors back: service resumes
        s.sendall(signed(keyring))
        assert recv_reply(s) == rc_reply(0)
        p.stdin.write("\n")
        p.stdin.flush()
        stats = json.loads(p.stdout.readline())
        assert 1 <= stats["drop_emfile"] <= len(held) and stats["frames_verified"] == 1
    finally:
        p.kill()
        p.wait()


# ---- forwarding -------------------------------------------------------------------------------------

class Upstream:
    """A tiny upstream server: reads one frame per connection, records the
    peer address and the bytes, answers with `reply` (in two writes), or
    misbehaves per `mode` ("close": close without a reply, "stall": never answer)."""

    def __init__(self, reply, mode="reply"):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.reply, self.mode = reply, mode
        self.peers, self.frames, self.held = [], [], []
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, peer = self.sock.accept()
            except OSError:
                return
            self.peers.append(peer)
            data = recv_reply(c)
            self.frames.append(data)
            if self.mode == "reply":
                c.sendall(self.reply[:5])
                time.sleep(0.01)
                c.sendall(self.reply[5:])
                c.close()
            elif self.mode == "close":
                c.close()
            else:
                self.held.append(c)

    def close(self):
        self.sock.close()
        for c in self.held:
            c.close()


def forwarding_driver(upstream_port, **fwd):
    def on_event(core, ev):
        if ev.kind == S.EV_VERIFIED:
            core.forward(ev.conn_id, ("127.0.0.1", upstream_port), **fwd)
        elif ev.kind == S.EV_FORWARD_ERROR:
            core.reply(ev.conn_id, rc_reply(1012))
    return on_event


def test_forward_relays_byte_for_byte_from_the_bound_source(keyring, driver):
    reply = pack_frame(RESPONSE_SLURM_RC, b"\0\0\0\0" + b"r" * 3000, flags=0x0044)
    up = Upstream(reply)
    try:
        d = driver(on_event=forwarding_driver(up.port, source="127.0.0.7"))
        port = d.call(lambda c: c.listen_tcp())
        frame = signed(keyring, body=b"b" * 777, msg_type=2001)
        s = tcp_client(port)
        s.sendall(frame)
        assert recv_reply(s) == reply
        assert closed_by_server(s)
        assert up.frames == [frame] and up.peers[0][0] == "127.0.0.7"
        assert d.wait_stat("forward_done", 1)
        done = [e for e in d.events if e.kind == S.EV_FORWARD_DONE]
        assert len(done) == 1 and done[0].reply_len == len(reply) and done[0].upstream_ns > 0

        # bind_peer: the upstream sees the client's own address
        d2 = driver(on_event=forwarding_driver(up.port, bind_peer=True))
        port2 = d2.call(lambda c: c.listen_tcp("0.0.0.0", 0))
        s = tcp_client(port2, source="127.0.0.9")
        s.sendall(frame)
        assert recv_reply(s) == reply
        assert up.peers[-1][0] == "127.0.0.9"
    finally:
        up.close()


def test_configured_upstream_and_whose_address_it_sees(keyring, driver):
    """forward(conn_id) without an upstream relays to set_upstream's, from the client's own
    loopback address with SRC_LOOPBACK, from the core's without; bad settings are refused."""
    reply = pack_frame(RESPONSE_SLURM_RC, b"\0\0\0\0", flags=0x0044)
    up = Upstream(reply)
    try:
        d = driver(on_event=lambda core, ev: ev.kind == S.EV_VERIFIED and core.forward(ev.conn_id))
        port = d.call(lambda c: c.listen_tcp("0.0.0.0", 0))
        for source, seen in ((S.SRC_LOOPBACK, "127.0.0.9"), (0, "127.0.0.1"),
                             (S.SRC_REMOTE, "127.0.0.1")):
            d.call(lambda c, src=source: c.set_upstream("127.0.0.1", up.port, src))
            s = tcp_client(port, source="127.0.0.9")
            s.sendall(signed(keyring))
            assert recv_reply(s) == reply
            assert up.peers[-1][0] == seen
        # a dual-stack listener: an IPv4 client (::ffff:127.0.0.9) is bound as 127.0.0.9
        port6 = d.call(lambda c: c.listen_tcp("::", 0))
        d.call(lambda c: c.set_upstream("127.0.0.1", up.port, S.SRC_LOOPBACK))
        s = tcp_client(port6, source="127.0.0.9")
        s.sendall(signed(keyring))
        assert recv_reply(s) == reply
        assert up.peers[-1][0] == "127.0.0.9"
        with pytest.raises(BadArgumentError):                  # no such SRC_* flag
            d.call(lambda c: c.set_upstream("127.0.0.1", up.port, 8))
    finally:
        up.close()
    bare = S.ServeCore()
    with pytest.raises(BadArgumentError):
        bare.set_auto_forward(True)                 # no upstream configured
    bare.free()


def test_upstream_latency_is_counted_in_buckets_without_events(keyring, driver):
    """With report_forward_done off no event per relayed reply reaches Python, and the core's
    latency buckets count every one: per bucket, above the last bound, and their total time."""
    reply = pack_frame(RESPONSE_SLURM_RC, b"\0\0\0\0", flags=0x0044)
    up = Upstream(reply)
    try:
        d = driver(on_event=forwarding_driver(up.port), report_forward_done=0)
        assert d.call(lambda c: c.latency()) == ([0], 0)          # no buckets set: none counted
        bounds = [1e-9, 1e-6, 60.0]                               # nothing is faster than 1 ns
        d.call(lambda c: c.set_latency_buckets(bounds))
        port = d.call(lambda c: c.listen_tcp())
        for _ in range(5):
            s = tcp_client(port)
            s.sendall(signed(keyring))
            assert recv_reply(s) == reply
            s.close()
        assert d.wait_stat("forward_done", 5)
        counts, total_ns = d.call(lambda c: c.latency())
        assert len(counts) == 4 and sum(counts) == 5 and counts[0] == 0 and counts[3] == 0
        assert total_ns > 0
        assert not [e for e in d.events if e.kind == S.EV_FORWARD_DONE]
        d.call(lambda c: c.set_latency_buckets(bounds))            # setting them again clears
        assert d.call(lambda c: c.latency()) == ([0, 0, 0, 0], 0)
        for bad in ([2.0, 1.0], [1.0, 1.0], [float(k + 1) for k in range(33)]):
            with pytest.raises(BadArgumentError):
                d.call(lambda c, b=bad: c.set_latency_buckets(b))
    finally:
        up.close()


def fd_count():
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.parametrize("mode", ["refused", "close", "stall"])
def test_vanished_upstream_gives_an_error_event_and_leaks_nothing(keyring, driver, mode):
    up = None
    if mode == "refused":
        tmp = socket.socket()
        tmp.bind(("127.0.0.1", 0))
        up_port = tmp.getsockname()[1]
        tmp.close()                       # nothing listens there
    else:
        up = Upstream(b"", mode=mode)
        up_port = up.port
    try:
        d = driver(on_event=forwarding_driver(up_port), up_reply_ms=200)
        port = d.call(lambda c: c.listen_tcp())
        frame = signed(keyring)
        s = tcp_client(port)              # warm-up: lazy allocations happen once
        s.sendall(frame)
        assert recv_reply(s) == rc_reply(1012)
        s.close()
        before = fd_count()
        for _ in range(10):
            s = tcp_client(port)
            s.sendall(frame)
            assert recv_reply(s) == rc_reply(1012)
            s.close()
        errs = [e for e in d.events if e.kind == S.EV_FORWARD_ERROR]
        assert len(errs) == 11
        want = {"refused": lib.SA_E_SERVE_SYS, "close": lib.SA_E_SERVE_UP_CLOSED,
                "stall": lib.SA_E_SERVE_UP_TIMEOUT}[mode]
        assert {e.status for e in errs} == {want}
        if mode == "refused":
            assert errs[0].sys_errno == errno.ECONNREFUSED
        if up:
            for c in up.held:
                c.close()
            up.held.clear()
        st = d.sync()
        assert st["conns_open"] == 0 and st["forward_errors"] == 11
        assert fd_count() <= before
    finally:
        if up:
            up.close()


def test_forward_to_a_unix_upstream(keyring, driver, tmp_path):
    path = str(tmp_path / "up.sock")
    reply = rc_reply(0)
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(4)
    got = []

    def serve_one():
        c, _ = srv.accept()
        got.append(recv_reply(c))
        c.sendall(reply)
        c.close()
    t = threading.Thread(target=serve_one, daemon=True)
    t.start()

    def on_event(core, ev):
        if ev.kind == S.EV_VERIFIED:
            core.forward(ev.conn_id, (path, -1))
    d = driver(on_event=on_event)
    port = d.call(lambda c: c.listen_tcp())
    frame = signed(keyring)
    s = tcp_client(port)
    s.sendall(frame)
    assert recv_reply(s) == reply
    t.join(5)
    assert got == [frame]
    srv.close()


# ---- the binding -------------------------------------------------------------------------------------

def test_poll_releases_the_gil(keyring):
    core = S.ServeCore()
    core.listen_tcp()
    counter = [0]
    stop = []

    def spin():
        while not stop:
            counter[0] += 1
    t = threading.Thread(target=spin)
    t.start()
    time.sleep(0.05)
    start = counter[0]
    t0 = time.monotonic()
    assert core.poll(300) == []
    stop.append(1)
    t.join()
    assert time.monotonic() - t0 >= 0.25
    # the spinning thread ran while poll blocked (with the GIL held it could not)
    assert counter[0] - start > 10000
    core.free()


def test_stale_ids_and_wrong_states_are_refused(keyring, driver):
    d = driver()
    port = d.call(lambda c: c.listen_tcp())
    s = tcp_client(port)
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(0)
    cid = d.events[0].conn_id
    with pytest.raises(S.ServeError) as ei:
        d.call(lambda c: c.reply(cid, b"late"))
    assert ei.value.status == lib.SA_E_SERVE_CONN
    with pytest.raises(S.ServeError):
        d.call(lambda c: c.close(cid))


# ---- the incremental reader -------------------------------------------------------------------------

def parse_head(data, max_head=16 * 1024, max_frame=1 << 20):
    o = ffi.new("sa_rpc_opts *")
    o.min_version, o.max_version, o.max_frame, o.length_prefix = 0x2A00, 0x2D00, max_frame, 1
    f = ffi.new("sa_rpc_frame *")
    return lib.sa_serve_parse_head(data, len(data), o, max_head, f), f


def test_parse_head_needs_exactly_the_header_and_auth_section(keyring):
    frame = signed(keyring, body=b"z" * 100, msg_type=2001)
    full = parse_frame(frame)
    head_end = len(frame) - 100
    for cut in range(len(frame) + 1):
        rc, f = parse_head(frame[:cut])
        if cut < head_end:
            assert rc == 1, cut
        else:
            assert rc == 0, cut
            assert f.body_off == head_end and f.total_len == len(frame) - 4
            assert frame[f.cred_off:f.cred_off + f.cred_len - 1] == full.auth_cred
    assert parse_head(b"\xff\xff\xff\xff")[0] == lib.SA_E_RPC_TOO_LARGE
    assert parse_head(frame[:4] + b"\x10\x00")[0] == lib.SA_E_RPC_VERSION
    assert parse_head(frame[:head_end - 10], max_head=64)[0] == lib.SA_E_SERVE_HEAD_LONG
    # total_len shorter than the header+auth section: the frame ends inside it
    short = struct.pack(">I", 20) + frame[4:head_end]
    assert parse_head(short)[0] in (lib.SA_E_RPC_HEADER_SHORT, lib.SA_E_RPC_AUTH_SHORT)


def test_buffered_bytes_cap_bounds_a_flood_of_stalled_connections(keyring, driver):
    d = driver(buf_size=4096, max_head=4000, max_buffered=5 * 4096, max_frame=1 << 20,
               max_per_ip=0, head_ms=10000)
    port = d.call(lambda c: c.listen_tcp())
    stalled = [tcp_client(port) for _ in range(8)]
    for s in stalled:
        s.sendall(b"\0\0")
    assert d.wait_stat("drop_nomem", 3)
    st = d.sync()
    assert st["conns_open"] == 5 and st["buffered_high"] <= 5 * 4096
    for s in stalled[:5]:
        assert not closed_by_server(s, timeout=0.05)   # the first five are kept
    for s in stalled:
        s.close()
    assert d.wait_stat("drop_peer_closed", 5)
    # a verified frame whose body would pass the cap is dropped, not buffered
    big = signed(keyring, body=b"q" * 30000, msg_type=2001)
    s = tcp_client(port)
    s.sendall(big)
    assert recv_reply(s) == b""
    assert d.wait_stat("drop_nomem", 4)
    small = signed(keyring, body=b"q" * 10000, msg_type=2001)
    s = tcp_client(port)
    s.sendall(small)
    assert recv_reply(s) == rc_reply(0)
    assert d.sync()["buffered"] == 0


def test_ipv6_peer(keyring, driver):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    d = driver()
    try:
        port = d.call(lambda c: c.listen_tcp("::1", 0))
    except S.ServeError:
        pytest.skip("::1 not available")
    s = socket.create_connection(("::1", port))
    s.sendall(signed(keyring))
    assert recv_reply(s) == rc_reply(0)
    assert d.events[0].peer_family == S.AF_INET6
    assert d.events[0].peer == s.getsockname()[:2]
