"""The controller shim over real sockets: the shim on the C serving core in a thread of the
test (unix socket and 127.0.0.1:0) and the `slurmauth-fast shim` CLI in a real subprocess.
Clients send framed pings signed with real auth/slurm tokens, bad signatures, truncated
frames, oversized prefixes and garbage."""
import json
import logging
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.rpc import REQUEST_PING, RESPONSE_SLURM_RC, body_hash_payload, pack_frame, parse_frame
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.shim import ControllerShim

KEY = b"shim test key: 32 bytes long!!!!"
CLIENT_UID = 1000


@pytest.fixture(scope="module")
def keyring():
    return keys.Keyring.from_key_bytes(KEY)


def ping(keyring, *, msg_type=REQUEST_PING, body=b"", version=0x2D00, **kw):
    """A REQUEST_PING as a client signs it: ruid = the controller's uid."""
    cred = dict(uid=CLIENT_UID, gid=CLIENT_UID, host="client", ruid=os.getuid(),
                payload=body_hash_payload(body, msg_type))
    cred.update(kw)
    return pack_frame(msg_type, body, credential=tokens.create_credential(keyring, **cred),
                      version=version)


def read_reply(sock):
    """One reply frame, or b"" when the server closed without replying."""
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return data
        data += chunk
        if len(data) >= 4 and len(data) >= 4 + struct.unpack(">I", data[:4])[0]:
            return data


def check_reply(keyring, reply, rc=0, version=0x2D00):
    """The reply slurmctld 26.05 sends: no credential, flags NO_AUTH_CRED|MSG_KEEP_BUFFER,
    the requester's version, body = uint32 rc (24 bytes in all, prefix included)."""
    f = parse_frame(reply)
    assert (f.msg_type, f.version, f.flags) == (RESPONSE_SLURM_RC, version, 0x0044)
    assert f.auth_plugin is None and bytes(f.body) == struct.pack(">I", rc)
    assert len(reply) == 24
    assert reply == ControllerShim.reply(RESPONSE_SLURM_RC, struct.pack(">I", rc), version=version)


class RunningShim:
    """The shim serving in a thread; ``connect()`` opens a client socket to it."""

    def __init__(self, keyring, transport, tmp_path, *, verifier_uid=None, verifier=None, **config):
        """``verifier``: a FrameVerifier to serve with (else one over ``keyring``)."""
        if verifier is None:
            verifier = FrameVerifier(tokens.Verifier(keyring, verifier_uid=verifier_uid))
        self.shim = ControllerShim(verifier, **config)
        if transport == "unix":
            self.addr, self.family = str(tmp_path / "shim.sock"), socket.AF_UNIX
            self.shim.core.listen_unix(self.addr)
        else:
            self.addr = ("127.0.0.1", self.shim.core.listen_tcp("127.0.0.1", 0))
            self.family = socket.AF_INET
        self.thread = threading.Thread(target=self.shim.serve_forever, kwargs={"poll_ms": 50})
        self.thread.start()

    def connect(self):
        s = socket.socket(self.family, socket.SOCK_STREAM)
        s.settimeout(10)
        s.connect(self.addr)
        return s

    def stats(self):
        return self.shim.core.stats()

    def close(self):
        self.shim.stop()
        self.thread.join(10)
        self.shim.close()


@pytest.fixture(params=["unix", "tcp"])
def server(request, keyring, tmp_path):
    made = []

    def start(**kw):
        made.append(RunningShim(keyring, request.param, tmp_path, **kw))
        return made[-1]
    yield start
    for s in made:
        s.close()


def exchange(srv, data, *, eof=True):
    """Send ``data`` on a new connection and read the reply (b"": closed without one)."""
    with srv.connect() as s:
        s.sendall(data)
        if eof:
            s.shutdown(socket.SHUT_WR)
        return read_reply(s)


def test_ping_is_answered(server, keyring):
    check_reply(keyring, exchange(server(), ping(keyring)))


def test_one_rpc_per_connection_and_older_versions(server, keyring):
    """Like slurmctld: one reply, then the connection is closed; a second frame
    sent on it gets nothing. Each protocol version is answered in its own."""
    srv = server()
    for v in (0x2D00, 0x2A00):
        with srv.connect() as s:
            s.sendall(ping(keyring, version=v) + ping(keyring, version=v))
            first = read_reply(s)
            second = read_reply(s)
        check_reply(keyring, first, version=v)
        assert second == b""


def test_other_verified_messages_get_an_error_rc(server, keyring):
    check_reply(keyring, exchange(server(), ping(keyring, msg_type=2009, body=b"\x00\x00\x00\x01")),
                rc=1000)


def _empty_payload_ping(keyring):
    """A REQUEST_PING whose credential says "payload":"" (signed, otherwise valid)."""
    now = int(time.time())
    claims = {"context": "auth", "exp": now + 60, "gid": CLIENT_UID, "host": "client", "iat": now,
              "payload": "", "ruid": os.getuid(), "uid": CLIENT_UID, "ver": 0x2D00}
    token = keyring.default_key().key.sign_raw(b'{"alg":"HS256","typ":"JWT"}',
                                               json.dumps(claims, separators=(",", ":")).encode())
    return pack_frame(REQUEST_PING, b"", credential=token)


@pytest.mark.parametrize("case", ["bad_signature", "wrong_ruid", "body_tampered", "empty_payload"])
def test_failed_credentials_get_rc_1007_from_the_core(server, keyring, case):
    """A frame that parses but whose auth/slurm credential fails is answered with
    SLURM_PROTOCOL_AUTHENTICATION_ERROR and closed, as slurmctld does: by the C core,
    which counts it and never hands it to Python."""
    data = {
        "bad_signature": ping(keys.Keyring.from_key_bytes(b"another key, also 32 bytes long!")),
        "wrong_ruid": ping(keyring, ruid=os.getuid() + 1),
        "body_tampered": ping(keyring, body=b"\x00\x00\x00\x00")[:-1] + b"\x01",
        # slurmctld 26.05.3 answers 1007: xbase64_decode() fails on ""
        "empty_payload": _empty_payload_ping(keyring),
    }[case]
    srv = server()
    check_reply(keyring, exchange(srv, data), rc=1007)
    st = srv.stats()
    assert st["frames_refused"] == 1 and st["refused_answered"] == 1 and st["frames_verified"] == 0


def test_no_credential_gets_rc_1007_and_a_log_line(server, keyring, caplog):
    srv = server()
    with caplog.at_level(logging.INFO, logger="slurmauth_fast.shim"):
        check_reply(keyring, exchange(srv, pack_frame(REQUEST_PING, b"", flags=0x40)), rc=1007)
    assert "no credential" in caplog.text and "eyJ" not in caplog.text


@pytest.mark.parametrize("case", ["truncated", "garbage", "oversized", "bad_version"])
def test_bad_frames_are_closed_unanswered(server, keyring, case):
    good = ping(keyring, body=b"\x00\x00\x00\x00")
    data = {
        "truncated": good[:-3],
        "garbage": b"\x00\x00\x00\x08garbage!",
        "oversized": b"\xff\xff\xff\xff",
        "bad_version": ping(keyring, version=0x2900),
    }[case]
    counter = {"truncated": "drop_peer_closed", "garbage": "frames_malformed",
               "oversized": "drop_too_large", "bad_version": "frames_malformed"}[case]
    srv = server()
    # for the oversized frame, the server must close without waiting for the 4 GiB
    assert exchange(srv, data, eof=case != "oversized") == b""
    deadline = time.monotonic() + 5
    while srv.stats()[counter] != 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert srv.stats()[counter] == 1
    assert srv.stats()["frames_verified"] == 0


def test_slow_client_times_out(server, keyring):
    srv = server(head_ms=300)
    start = time.monotonic()
    assert exchange(srv, ping(keyring)[:10], eof=False) == b""
    assert time.monotonic() - start < 5
    assert srv.stats()["drop_head_timeout"] == 1


def test_small_frame_cap(server, keyring):
    srv = server(max_frame=1024)
    assert exchange(srv, ping(keyring, body=bytes(2000))) == b""
    assert srv.stats()["drop_too_large"] == 1


def test_answer_is_what_the_socket_gets(server, keyring):
    srv = server()
    for data in (ping(keyring), ping(keyring, msg_type=2009, body=b"\x00\x00\x00\x01"),
                 ping(keys.Keyring.from_key_bytes(b"another key, also 32 bytes long!"))):
        assert srv.shim.answer(data) == exchange(srv, data)


# --- the CLI in a real subprocess ------------------------------------------------

def test_cli_shim_subprocess(keyring, tmp_path):
    key = tmp_path / "slurm.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    sock = tmp_path / "shim.sock"
    env = dict(os.environ, SLURM_SACK_JWKS=str(tmp_path / "none.jwks"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmauth_fast.cli", "shim", "--unix", str(sock),
         "--listen", "127.0.0.1:0", "--key", str(key), "--conf-dir", str(tmp_path), "-v"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline().strip() for _ in range(2)]
        assert lines[0] == f"listening on unix:{sock}", (lines, proc.stderr.read() if proc.poll() is not None else "")
        port = int(lines[1].rsplit(":", 1)[1])

        def send(family, addr, data):
            with socket.socket(family, socket.SOCK_STREAM) as s:
                s.settimeout(10)
                s.connect(addr)
                s.sendall(data)
                return read_reply(s)

        check_reply(keyring, send(socket.AF_UNIX, str(sock), ping(keyring)))
        check_reply(keyring, send(socket.AF_INET, ("127.0.0.1", port), ping(keyring)))
        assert send(socket.AF_INET, ("127.0.0.1", port), b"\x00\x00\x00\x03abc") == b""
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "shim stopped" in out
    assert "1 malformed" in err and "msg_type 1008 from uid 1000" in err
    assert not sock.exists()


def test_cli_shim_reloads_keys_on_sighup(keyring, tmp_path):
    key = tmp_path / "slurm.key"
    key.write_bytes(KEY)
    key.chmod(0o600)
    sock = tmp_path / "shim.sock"
    new_key = b"the rotated key, 32 bytes long!!"
    env = dict(os.environ, SLURM_SACK_JWKS=str(tmp_path / "none.jwks"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmauth_fast.cli", "shim", "--unix", str(sock), "--key", str(key),
         "--conf-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)

    def send(frame):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(10)
            s.connect(str(sock))
            s.sendall(frame)
            return read_reply(s)

    try:
        assert proc.stdout.readline().startswith("listening on unix:")
        rotated = keys.Keyring.from_key_bytes(new_key)
        check_reply(rotated, send(ping(rotated)), rc=1007)   # not yet known
        key.write_bytes(new_key)
        proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 20                         # the reload is asynchronous
        while True:
            reply = send(ping(rotated))
            if parse_frame(reply).body != struct.pack(">I", 1007) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        check_reply(rotated, reply)
        check_reply(keyring, send(ping(keyring)), rc=1007)   # the old key is gone
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "keys reloaded" in err


def test_cli_refuses_an_unsafe_key_file(tmp_path):
    key = tmp_path / "slurm.key"
    key.write_bytes(KEY)
    key.chmod(0o604)
    r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "shim", "--unix",
                        str(tmp_path / "s.sock"), "--key", str(key), "--conf-dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 3 and "insecure" in r.stderr
