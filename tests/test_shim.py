"""The controller shim over real sockets: a real asyncio server in-process
(unix socket and 127.0.0.1:0) and the `slurmauth-fast shim` CLI in a real
subprocess. Clients send framed pings signed with real auth/slurm tokens,
bad signatures, truncated frames, oversized prefixes and garbage."""
import asyncio
import json
import logging
import os
import signal
import struct
import subprocess
import sys
import time

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.rpc import REQUEST_PING, RESPONSE_SLURM_RC, body_hash_payload, pack_frame, parse_frame
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


async def read_reply(reader):
    """One reply frame, or b"" when the server closed without replying."""
    prefix = await asyncio.wait_for(reader.read(4), 10)
    if not prefix:
        return b""
    (n,) = struct.unpack(">I", prefix)
    return prefix + await asyncio.wait_for(reader.readexactly(n), 10)


def check_reply(keyring, reply, rc=0, version=0x2D00):
    """The reply slurmctld 26.05 sends: no credential, flags NO_AUTH_CRED|MSG_KEEP_BUFFER,
    the requester's version, body = uint32 rc (24 bytes in all, prefix included)."""
    f = parse_frame(reply)
    assert (f.msg_type, f.version, f.flags) == (RESPONSE_SLURM_RC, version, 0x0044)
    assert f.auth_plugin is None and bytes(f.body) == struct.pack(">I", rc)
    assert len(reply) == 24
    assert reply == ControllerShim.reply(RESPONSE_SLURM_RC, struct.pack(">I", rc), version=version)


def run_with_server(keyring, client, *, transport, tmp_path, **shim_kw):
    async def main():
        shim = ControllerShim(keyring, **shim_kw)
        if transport == "unix":
            path = str(tmp_path / "shim.sock")
            await shim.start_unix(path)
            connect = lambda: asyncio.open_unix_connection(path)  # noqa: E731
        else:
            server = await shim.start_tcp("127.0.0.1", 0)
            port = server.sockets[0].getsockname()[1]
            connect = lambda: asyncio.open_connection("127.0.0.1", port)  # noqa: E731
        try:
            return await client(connect)
        finally:
            await shim.close()
    return asyncio.run(main())


@pytest.fixture(params=["unix", "tcp"])
def serve(request, keyring, tmp_path):
    return lambda client, **kw: run_with_server(keyring, client, transport=request.param,
                                                tmp_path=tmp_path, **kw)


def test_ping_is_answered(serve, keyring):
    async def client(connect):
        reader, writer = await connect()
        writer.write(ping(keyring))
        reply = await read_reply(reader)
        writer.close()
        return reply
    check_reply(keyring, serve(client))


def test_one_rpc_per_connection_and_older_versions(serve, keyring):
    """Like slurmctld: one reply, then the connection is closed; a second frame
    sent on it gets nothing. Each protocol version is answered in its own."""
    async def client(connect):
        replies = []
        for v in (0x2D00, 0x2A00):
            reader, writer = await connect()
            writer.write(ping(keyring, version=v) + ping(keyring, version=v))
            replies.append(await read_reply(reader))
            replies.append(await read_reply(reader))
            writer.close()
        return replies
    first, second, older, older_second = serve(client)
    check_reply(keyring, first)
    check_reply(keyring, older, version=0x2A00)
    assert second == b"" and older_second == b""


def test_other_verified_messages_get_an_error_rc(serve, keyring):
    async def client(connect):
        reader, writer = await connect()
        writer.write(ping(keyring, msg_type=2009, body=b"\x00\x00\x00\x01"))
        return await read_reply(reader)
    check_reply(keyring, serve(client), rc=1000)


def closed_without_reply(data, *, eof=True):
    async def client(connect):
        reader, writer = await connect()
        writer.write(data)
        if eof:
            writer.write_eof()
        reply = await read_reply(reader)
        writer.close()
        return reply
    return client


def _empty_payload_ping(keyring):
    """A REQUEST_PING whose credential says "payload":"" (signed, otherwise valid)."""
    now = int(time.time())
    claims = {"context": "auth", "exp": now + 60, "gid": CLIENT_UID, "host": "client", "iat": now,
              "payload": "", "ruid": os.getuid(), "uid": CLIENT_UID, "ver": 0x2D00}
    token = keyring.default_key().key.sign_raw(b'{"alg":"HS256","typ":"JWT"}',
                                               json.dumps(claims, separators=(",", ":")).encode())
    return pack_frame(REQUEST_PING, b"", credential=token)


@pytest.mark.parametrize("case", ["bad_signature", "wrong_ruid", "body_tampered", "no_auth", "empty_payload"])
def test_failed_credentials_get_rc_1007(serve, keyring, case, caplog):
    """A frame that parses but whose credential fails is answered with
    SLURM_PROTOCOL_AUTHENTICATION_ERROR and closed, as slurmctld does."""
    data = {
        "bad_signature": ping(keys.Keyring.from_key_bytes(b"another key, also 32 bytes long!")),
        "wrong_ruid": ping(keyring, ruid=os.getuid() + 1),
        "body_tampered": ping(keyring, body=b"\x00\x00\x00\x00")[:-1] + b"\x01",
        "no_auth": pack_frame(REQUEST_PING, b"", flags=0x40),
        # slurmctld 26.05.3 answers 1007: xbase64_decode() fails on ""
        "empty_payload": _empty_payload_ping(keyring),
    }[case]
    expected = {"bad_signature": "SignatureError", "wrong_ruid": "Error",
                "body_tampered": "BodyHashMismatchError", "no_auth": "MissingCredentialError",
                "empty_payload": "PayloadError"}[case]
    with caplog.at_level(logging.INFO, logger="slurmauth_fast.shim"):
        check_reply(keyring, serve(closed_without_reply(data)), rc=1007)
    assert expected in caplog.text
    assert "eyJ" not in caplog.text          # tokens never reach the log


@pytest.mark.parametrize("case", ["truncated", "garbage", "oversized", "bad_version"])
def test_bad_frames_are_logged_and_closed(serve, keyring, case, caplog):
    good = ping(keyring, body=b"\x00\x00\x00\x00")
    data = {
        "truncated": good[:-3],
        "garbage": b"\x00\x00\x00\x08garbage!",
        "oversized": b"\xff\xff\xff\xff",
        "bad_version": ping(keyring, version=0x2900),
    }[case]
    expected = {
        "truncated": "connection closed mid-frame", "garbage": "Error", "oversized": "FrameTooLargeError",
        "bad_version": "ProtocolVersionError",
    }[case]
    # for the oversized frame, the server must close without waiting for the 4 GiB
    with caplog.at_level(logging.INFO, logger="slurmauth_fast.shim"):
        assert serve(closed_without_reply(data, eof=case != "oversized")) == b""
    assert expected in caplog.text
    assert "eyJ" not in caplog.text          # tokens never reach the log


def test_slow_client_times_out(serve, keyring, caplog):
    with caplog.at_level(logging.WARNING, logger="slurmauth_fast.shim"):
        assert serve(closed_without_reply(ping(keyring)[:10], eof=False), timeout=0.3) == b""
    assert "timed out" in caplog.text


def test_small_frame_cap(serve, keyring):
    assert serve(closed_without_reply(ping(keyring, body=bytes(2000))), max_frame=1024) == b""


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

        async def client():
            replies = []
            for connect in (lambda: asyncio.open_unix_connection(str(sock)),
                            lambda: asyncio.open_connection("127.0.0.1", port)):
                reader, writer = await connect()
                writer.write(ping(keyring))
                replies.append(await read_reply(reader))
                writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"\x00\x00\x00\x03abc")
            replies.append(await read_reply(reader))
            return replies

        unix_reply, tcp_reply, garbage_reply = asyncio.run(client())
        check_reply(keyring, unix_reply)
        check_reply(keyring, tcp_reply)
        assert garbage_reply == b""
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, err
    assert "shim stopped" in out
    assert "rejected" in err and "msg_type 1008 from uid 1000" in err
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

    async def send(frame):
        reader, writer = await asyncio.open_unix_connection(str(sock))
        writer.write(frame)
        reply = await read_reply(reader)
        writer.close()
        return reply

    try:
        assert proc.stdout.readline().startswith("listening on unix:")
        rotated = keys.Keyring.from_key_bytes(new_key)
        check_reply(rotated, asyncio.run(send(ping(rotated))), rc=1007)   # not yet known
        key.write_bytes(new_key)
        proc.send_signal(signal.SIGHUP)
        reply = b""
        for _ in range(50):                                     # the reload is asynchronous
            reply = asyncio.run(send(ping(rotated)))
            if parse_frame(reply).body != struct.pack(">I", 1007):
                break
        check_reply(rotated, reply)
        check_reply(keyring, asyncio.run(send(ping(keyring))), rc=1007)   # the old key is gone
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
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
