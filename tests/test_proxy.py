"""The proxy on real sockets, in front of a small upstream server run by the test: byte-for-
byte relay, refusals that never reach the upstream, Slurm's rate limit against a fake clock,
transparency (the upstream sees the client's own address), a vanished upstream, metrics, and
the CLI in a subprocess (SIGHUP reload, SIGTERM drain). tests/test_real_slurm_proxy.py runs
it in front of a real slurmctld."""
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.frontend import rc_reply
from slurmauth_fast.proxy import ControllerProxy
from slurmauth_fast.ratelimit import RateLimitConfig
from slurmauth_fast.rpc import AUTH_JWT, REQUEST_PING, body_hash_payload, pack_frame, parse_frame
from test_shim import read_reply as recv_frame

KEY = b"proxy test key, 32 bytes long!!!"
SLURM_USER = os.getuid()


def ping(ring=None, *, uid=1000, body=b"", msg_type=REQUEST_PING):
    ring = ring or keys.Keyring.from_key_bytes(KEY)
    token = tokens.create_credential(ring, uid=uid, gid=uid, ruid=SLURM_USER,
                                     payload=body_hash_payload(body, msg_type))
    return pack_frame(msg_type, body, credential=token)


class Upstream:
    """A one-RPC-per-connection server that records each request and its peer address,
    and answers RESPONSE_SLURM_RC with ``rc``."""

    def __init__(self, rc=0):
        self.rc = rc
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(128)
        self.port = self.sock.getsockname()[1]
        self.seen = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                req = recv_frame(conn)
                self.seen.append((req, peer[0]))
                conn.sendall(rc_reply(self.rc, struct.unpack(">H", req[4:6])[0]))

    def close(self):
        self.sock.close()


class Running:
    def __init__(self, upstream_port, *, use_client_ids=False, **kw):
        ring = keys.Keyring.from_key_bytes(KEY)
        verifier = FrameVerifier(tokens.Verifier(ring, use_client_ids=use_client_ids))
        self.proxy = ControllerProxy(verifier, ("127.0.0.1", upstream_port),
                                     slurm_user_uid=SLURM_USER, **kw)
        self.port = self.proxy.core.listen_tcp("127.0.0.1", 0)
        self.thread = threading.Thread(target=self.proxy.serve_forever, kwargs={"poll_ms": 50})
        self.thread.start()

    def send(self, data, source=None):
        with socket.create_connection(("127.0.0.1", self.port), timeout=10,
                                      source_address=(source, 0) if source else None) as s:
            s.sendall(data)
            return recv_frame(s)

    def close(self):
        self.proxy.stop()
        self.thread.join(10)
        self.proxy.close()


@pytest.fixture
def upstream():
    u = Upstream()
    yield u
    u.close()


@pytest.fixture
def proxy(upstream):
    made = []

    def start(**kw):
        made.append(Running(upstream.port, **kw))
        return made[-1]
    yield start
    for p in made:
        p.close()


def rc_of(reply):
    return struct.unpack(">I", bytes(parse_frame(reply).body))[0]


def test_relays_byte_for_byte_from_the_clients_address(proxy, upstream):
    p = proxy()
    frame = ping(body=b"\x00" * 8, msg_type=2001)
    reply = p.send(frame, source="127.0.0.7")
    assert reply == rc_reply(0, 0x2D00)
    assert upstream.seen == [(frame, "127.0.0.7")]        # transparent on loopback by bind


def test_transparency_off_uses_the_proxys_address(proxy, upstream):
    p = proxy(transparent="off")
    assert rc_of(p.send(ping(), source="127.0.0.9")) == 0
    assert upstream.seen[0][1] == "127.0.0.1"


def test_forged_and_credentialless_requests_never_reach_upstream(proxy, upstream):
    p = proxy()
    forged = ping(keys.Keyring.from_key_bytes(b"another key, also 32 bytes long!"))
    assert rc_of(p.send(forged)) == 1007
    assert rc_of(p.send(pack_frame(REQUEST_PING, b"", flags=0x40))) == 1007
    jwt = pack_frame(REQUEST_PING, b"", credential="a.b.c", plugin=AUTH_JWT, username="root")
    with socket.create_connection(("127.0.0.1", p.port), timeout=10) as s:
        s.sendall(jwt)                                   # auth/jwt is not configured: closed
        assert recv_frame(s) == b""
    assert upstream.seen == []
    assert p.proxy.core.stats()["frames_refused"] == 1


def test_identities_are_checked_before_the_relay(proxy, upstream):
    """Under use_client_ids the core hands up a token carrying "id" (it reads the object as
    JSON only): the verifier refuses a malformed identity, every time, and it never reaches
    slurmctld (one whose "gids" is a string kills slurmctld 26.05.3). A good one is relayed,
    and approved in the core: the next token with the same "id" bytes is forwarded by the
    core itself, under the same rate limit."""
    p = proxy(use_client_ids=True, rate_limit=RateLimitConfig(
        enabled=True, bucket_size=3, refill_rate=1, refill_period=4_000_000_000))
    ring = keys.Keyring.from_key_bytes(KEY)

    def with_id(identity=None, uid=1000):
        extra = {} if identity is None else {"id": identity}
        token = tokens.create_credential(ring, uid=uid, gid=uid, ruid=SLURM_USER, extra=extra,
                                         payload=body_hash_payload(b"", REQUEST_PING))
        return pack_frame(REQUEST_PING, b"", credential=token)
    good = {"name": "alice", "gecos": "", "dir": "/home/alice", "shell": "/bin/sh", "gids": [1000]}
    for bad in ({}, dict(good, gids="abc"), dict(good, gids=[-1]), dict(good, name=5)) * 2:
        assert rc_of(p.send(with_id(bad))) == 1007
    assert upstream.seen == []
    frame = with_id(good)
    assert [rc_of(p.send(frame)) for _ in range(2)] == [0, 0]
    assert [req for req, _ in upstream.seen] == [frame, frame]
    st = p.proxy.core.stats()
    assert (st["forwarded"], st["auto_forwarded"]) == (2, 1)    # the second by the core itself
    other = with_id(dict(good, gids=[1000, 100]))                # other bytes: up once more
    assert rc_of(p.send(other)) == 0
    assert rc_of(p.send(other)) == 1804                          # one bucket for uid 1000
    assert rc_of(p.send(frame)) == 1804
    st = p.proxy.core.stats()
    assert (st["forwarded"], st["auto_forwarded"], st["rate_limited"]) == (3, 1, 2)


def test_rate_limit_as_slurmctld_against_a_fake_clock(proxy, upstream):
    """On another clock than the wall clock every request is decided in Python."""
    now = [1_000_000.0]
    p = proxy(rate_limit=RateLimitConfig(enabled=True, bucket_size=2, refill_rate=1,
                                         refill_period=10), rate_clock=lambda: now[0])
    rcs = [rc_of(p.send(ping(uid=1000))) for _ in range(4)]
    assert rcs == [0, 0, 1804, 1804]                     # SLURMCTLD_COMMUNICATIONS_BACKOFF
    now[0] += 10
    assert [rc_of(p.send(ping(uid=1000))) for _ in range(2)] == [0, 1804]
    assert all(rc_of(p.send(ping(uid=SLURM_USER))) == 0 for _ in range(5))   # SlurmUser exempt
    assert len(upstream.seen) == 3 + 5                   # refused ones never reached it
    assert p.proxy.limiter.top_over_limit() == [(1000, 3)]
    st = p.proxy.core.stats()
    assert st["auto_forwarded"] == 0 and st["rate_limited"] == 0 and st["forwarded"] == 8


def test_rate_limit_in_the_core_on_the_wall_clock(proxy, upstream, caplog):
    """On the wall clock the core forwards verified auth/slurm requests and answers the
    over-limit ones itself, with the same table the Python path uses (one bucket per uid
    whatever decides), and hands up a log event as rl_log_freq says."""
    caplog.set_level(logging.INFO, logger="slurmauth_fast.proxy")
    p = proxy(rate_limit=RateLimitConfig(enabled=True, bucket_size=2, refill_rate=1,
                                         refill_period=4_000_000_000, log_freq=3600))
    assert [rc_of(p.send(ping(uid=1000), source="127.0.0.8")) for _ in range(4)] == \
        [0, 0, 1804, 1804]
    assert all(rc_of(p.send(ping(uid=SLURM_USER))) == 0 for _ in range(5))   # SlurmUser exempt
    assert [peer for _, peer in upstream.seen] == ["127.0.0.8"] * 2 + ["127.0.0.1"] * 5
    st = p.proxy.core.stats()
    assert st["auto_forwarded"] == 7 and st["rate_limited"] == 2
    assert p.proxy.limiter.top_over_limit() == [(1000, 2)]
    assert p.proxy.limiter.check(1000, REQUEST_PING) == (True, False)       # the same bucket
    logged = [r.getMessage() for r in caplog.records if "rate limit exceeded" in r.getMessage()]
    assert len(logged) == 1                               # rl_log_freq=3600: once per uid
    assert logged[0].startswith("RPC rate limit exceeded by uid 1000 with msg_type 1008 from "
                                "127.0.0.8:") and logged[0].endswith(", telling to back off")


def test_reload_puts_new_rate_limits_in_force_in_the_core(proxy, upstream):
    """Other rl_* settings after a reload swap the table the core decides with (on the loop's
    thread, as reload does): a disabled limit lets everything through, a new one starts fresh.
    (The CLI test covers SIGHUP's re-reading; this keyring has no file to re-read.)"""
    p = proxy(rate_limit=RateLimitConfig(enabled=True, bucket_size=1, refill_period=4_000_000_000))
    assert [rc_of(p.send(ping(uid=1000))) for _ in range(2)] == [0, 1804]

    def reload_to(config):
        old = p.proxy.limiter
        p.proxy.call_soon(lambda: p.proxy.apply_settings(config))
        deadline = time.monotonic() + 20                  # the reload is asynchronous
        while p.proxy.limiter is old and time.monotonic() < deadline:
            time.sleep(0.02)
        assert p.proxy.limiter.config == config
    reload_to(RateLimitConfig())
    assert [rc_of(p.send(ping(uid=1000))) for _ in range(5)] == [0] * 5
    reload_to(RateLimitConfig(enabled=True, bucket_size=2, refill_period=4_000_000_000))
    assert [rc_of(p.send(ping(uid=1000))) for _ in range(3)] == [0, 0, 1804]
    assert p.proxy.core.stats()["rate_limited"] == 2


def test_vanished_upstream_is_a_clean_error_without_leaks():
    with socket.socket() as s:                           # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    p = Running(dead)
    try:
        fds = len(os.listdir("/proc/self/fd"))
        for _ in range(20):
            assert rc_of(p.send(ping())) == 1800         # SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR
        time.sleep(0.2)
        assert len(os.listdir("/proc/self/fd")) <= fds + 1
        assert p.proxy.core.stats()["conns_open"] == 0
        assert p.proxy.core.stats()["forward_errors"] == 20
    finally:
        p.close()


def test_metrics(proxy, upstream):
    p = proxy(rate_limit=RateLimitConfig(enabled=True, bucket_size=1, refill_period=4_000_000_000))
    port = p.proxy.metrics.serve("127.0.0.1", 0)
    p.send(ping(uid=1000))
    p.send(ping(uid=1000))
    p.send(ping(keys.Keyring.from_key_bytes(b"another key, also 32 bytes long!")))
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    p.proxy.metrics.close()
    assert 'slurmauth_requests_total{outcome="forwarded",plugin="auth/slurm"} 1.0' in text
    assert 'slurmauth_requests_total{outcome="rate_limited",plugin="auth/slurm"} 1.0' in text
    assert 'slurmauth_rate_limited_by_uid{uid="1000"} 1.0' in text
    assert "slurmauth_core_frames_refused_total 1.0" in text
    assert "slurmauth_upstream_seconds_count 1.0" in text
    assert 'slurmauth_upstream_seconds_bucket{le="+Inf"} 1.0' in text
    assert 'slurmauth_upstream_seconds_bucket{le="0.0001"}' in text
    total = float(text.split("slurmauth_upstream_seconds_sum ")[1].split()[0])
    assert 0 < total < 10


def test_cli_proxy_reload_and_drain(upstream, tmp_path):
    key = tmp_path / "slurm.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    env = dict(os.environ, SLURM_SACK_JWKS=str(tmp_path / "none.jwks"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmauth_fast.cli", "proxy", "--listen", "127.0.0.1:0",
         "--upstream", f"127.0.0.1:{upstream.port}", "--key", str(key), "--conf-dir", str(tmp_path),
         "--rl-enable", "--rl-bucket-size", "1", "--rl-refill-period", "3600"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on tcp:127.0.0.1:"), (line, proc.stderr.read() if proc.poll() else "")
        port = int(line.rsplit(":", 1)[1])

        def send(frame):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
                s.sendall(frame)
                return recv_frame(s)
        assert rc_of(send(ping(uid=1000))) == 0
        assert rc_of(send(ping(uid=1000))) == 1804
        new = b"the rotated key, 32 bytes long!!"
        rotated = keys.Keyring.from_key_bytes(new)
        assert rc_of(send(ping(rotated, uid=SLURM_USER))) == 1007
        key.write_bytes(new)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20                  # the reload is asynchronous
        while rc_of(send(ping(rotated, uid=SLURM_USER))) != 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert rc_of(send(ping(rotated, uid=SLURM_USER))) == 0
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "proxy stopped" in out and "keys reloaded" in err
    assert "transparency auto" in err                    # said once at start
