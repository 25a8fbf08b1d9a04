"""auth/slurm and auth/jwt against a real slurmctld 26.05 (AuthType=auth/slurm,
AuthAltTypes=auth/jwt): frames that real clients send verify with the package, and
frames the package mints are answered by slurmctld; every tampering is refused by both."""
from __future__ import annotations

import os
import struct
import subprocess
import sys
import threading
import time

import pytest

from real_slurm import (
    NOBODY_GID,
    NOBODY_UID,
    CaptureProxy,
    SlurmCluster,
    reply_rc,
    send_rpc,
)
from slurmauth_fast import errors as E
from slurmauth_fast.bodyhash import HASH_K12, body_hash_payload
from slurmauth_fast.jwt import JWTVerifier, create_token
from slurmauth_fast.jws import HS256Key
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import (
    AUTH_JWT,
    AUTH_SLURM,
    REQUEST_PING,
    pack_frame,
    parse_frame,
    verify_rpc,
)
from slurmauth_fast.tokens import Verifier, create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)
JWT_KEY = os.urandom(48)
REQUEST_BUILD_INFO = 2001
RESPONSE_BUILD_INFO = 2002
REQUEST_NODE_INFO = 2007
RESPONSE_NODE_INFO = 2008
SLURM_PROTOCOL_AUTHENTICATION_ERROR = 1007
SLURM_AUTH_UID_ANY = 0xFFFFFFFF
#: REQUEST_BUILD_INFO's body: last_update (int64, 0 = send everything)
BUILD_INFO_BODY = struct.pack(">q", 0)


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, jwt_key=JWT_KEY).start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module")
def keyring():
    return Keyring.from_key_bytes(KEY)


@pytest.fixture(scope="module")
def captured(ctld):
    """Request frames real clients sent: scontrol ping, sinfo, squeue, scontrol show config."""
    frames = {}
    with CaptureProxy(ctld.port) as proxy:
        env = ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port)))
        for name, cmd in (("scontrol ping", ["scontrol", "ping"]), ("sinfo", ["sinfo"]),
                          ("squeue", ["squeue"]), ("scontrol show config", ["scontrol", "show", "config"])):
            start = len(proxy.requests)
            r = ctld.run(*cmd, env=env, check=False)
            frames[name] = proxy.requests[start:]
            assert frames[name], f"{name} sent nothing: {r.stdout} {r.stderr}"
    return frames


def mint(keyring, msg_type, body=b"", **kw):
    """A request signed by the package as a Slurm client's kiosk would: uid root, ruid = SlurmUser."""
    cred = dict(uid=0, gid=0, ruid=0, payload=body_hash_payload(body, msg_type, HASH_K12))
    cred.update(kw)
    return pack_frame(msg_type, body, credential=create_credential(keyring, **cred))


# -- frames from real clients ------------------------------------------------------

@pytest.mark.parametrize("command", ["scontrol ping", "sinfo", "squeue", "scontrol show config"])
def test_real_client_frames_verify(captured, keyring, ctld, command):
    for frame in captured[command]:
        v = verify_rpc(frame, Verifier(keyring))
        assert v.frame.auth_plugin == AUTH_SLURM
        assert (v.credential.uid, v.credential.gid) == (os.getuid(), os.getgid())
        assert v.credential.context == "sack"                # minted by a kiosk
        assert v.credential.ruid in (0, SLURM_AUTH_UID_ANY)  # SlurmUser, or anyone
        assert v.credential.cluster == ctld.cluster_name
        assert v.credential.payload[0] == HASH_K12          # the K12 binding was checked
        assert v.credential.payload == body_hash_payload(bytes(v.frame.body), v.frame.msg_type)


def test_real_client_msg_types(captured):
    types = {name: [parse_frame(f).msg_type for f in frames] for name, frames in captured.items()}
    assert types["scontrol ping"] == [REQUEST_PING]
    assert REQUEST_BUILD_INFO in types["scontrol show config"]
    assert REQUEST_NODE_INFO in types["sinfo"]


def _with_body_frame(captured):
    return next(f for f in captured["scontrol show config"] if parse_frame(f).body)


def _token_span(frame):
    token = parse_frame(frame).auth_cred
    at = frame.index(token)
    return at, token


def test_changed_body_byte_is_refused(captured, keyring):
    frame = _with_body_frame(captured)
    bad = frame[:-1] + bytes([frame[-1] ^ 1])
    with pytest.raises(E.BodyHashMismatchError):
        verify_rpc(bad, Verifier(keyring))


def test_changed_msg_type_is_refused(captured, keyring):
    frame = _with_body_frame(captured)
    bad = frame[:8] + struct.pack(">H", REQUEST_NODE_INFO) + frame[10:]
    with pytest.raises(E.BodyHashMismatchError):
        verify_rpc(bad, Verifier(keyring))


def test_other_key_is_refused(captured):
    with pytest.raises(E.SignatureError):
        verify_rpc(captured["scontrol ping"][0], Verifier(Keyring.from_key_bytes(os.urandom(64))))


def test_changed_signature_is_refused(captured, keyring):
    frame = captured["scontrol ping"][0]
    at, token = _token_span(frame)
    pos = at + token.rindex(b".") + 5
    bad = frame[:pos] + (b"A" if frame[pos:pos + 1] != b"A" else b"B") + frame[pos + 1:]
    with pytest.raises(E.SignatureError):
        verify_rpc(bad, Verifier(keyring))


# -- frames from the package -------------------------------------------------------

def test_package_ping_is_answered(ctld, keyring):
    reply = send_rpc(ctld.port, mint(keyring, REQUEST_PING))
    assert reply_rc(reply) == 0
    # slurmctld 26.05 replies unsigned (NO_AUTH_CRED | MSG_KEEP_BUFFER)
    f = parse_frame(reply)
    assert f.flags == 0x0044 and f.auth_plugin is None and len(reply) == 24


def test_package_build_info_is_answered(ctld, keyring):
    reply = send_rpc(ctld.port, mint(keyring, REQUEST_BUILD_INFO, BUILD_INFO_BODY))
    f = parse_frame(reply)
    assert f.msg_type == RESPONSE_BUILD_INFO, bytes(f.body)[:4]
    assert ctld.cluster_name.encode() in bytes(f.body)


def test_package_node_info_is_answered(ctld, keyring):
    body = struct.pack(">qI", 0, 0)                      # last_update, show_flags
    f = parse_frame(send_rpc(ctld.port, mint(keyring, REQUEST_NODE_INFO, body)))
    assert f.msg_type == RESPONSE_NODE_INFO and b"node1" in bytes(f.body)


@pytest.mark.parametrize("case", ["wrong key", "body changed", "expired", "wrong ruid"])
def test_slurmctld_refuses_bad_package_frames(ctld, keyring, case):
    """A credential that fails gets rc 1007; a body that does not match its hash (checked
    after the credential, while unpacking the body) gets the connection closed unanswered."""
    if case == "wrong key":
        frame = mint(Keyring.from_key_bytes(os.urandom(64)), REQUEST_PING)
    elif case == "body changed":
        frame = mint(keyring, REQUEST_BUILD_INFO, BUILD_INFO_BODY)
        frame = frame[:-1] + b"\x01"
    elif case == "expired":
        frame = mint(keyring, REQUEST_PING, now=1_700_000_000, ttl=60)
    else:
        frame = mint(keyring, REQUEST_PING, ruid=4242)
    reply = send_rpc(ctld.port, frame)
    if case == "body changed":
        assert reply == b""
    else:
        assert reply_rc(reply) == SLURM_PROTOCOL_AUTHENTICATION_ERROR
    # and the package refuses the same frame
    with pytest.raises(E.CredentialError):
        verify_rpc(frame, Verifier(keyring))


# -- auth/jwt ------------------------------------------------------------------------

def test_scontrol_token_verifies_with_the_package(ctld):
    r = ctld.run("scontrol", "token", "lifespan=600")
    token = r.stdout.strip().split("=", 1)[1]
    cred = JWTVerifier(hs256_key=HS256Key(JWT_KEY)).verify(token)
    assert cred.username == "root" and cred.uid == 0 and cred.exp - cred.iat == 600
    with pytest.raises(E.SignatureError):
        JWTVerifier(hs256_key=HS256Key(os.urandom(48))).verify(token)


def test_package_token_accepted_via_slurm_jwt(ctld):
    token = create_token(HS256Key(JWT_KEY), "root", lifespan=300)
    r = ctld.run("scontrol", "ping", env=ctld.env(SLURM_JWT=token))
    assert " is UP" in r.stdout


@pytest.mark.parametrize("case", ["expired", "wrong key"])
def test_slurmctld_refuses_bad_jwt(ctld, case):
    key = HS256Key(JWT_KEY if case == "expired" else os.urandom(48))
    token = create_token(key, "root", lifespan=60, now=1_700_000_000 if case == "expired" else None)
    r = ctld.run("scontrol", "ping", env=ctld.env(SLURM_JWT=token), check=False)
    assert " is UP" not in r.stdout
    with pytest.raises((E.ExpiredError, E.SignatureError)):
        JWTVerifier(hs256_key=HS256Key(JWT_KEY)).verify(token)


def test_package_jwt_frame_answered(ctld):
    """An auth/jwt (plugin 102) frame packed by the package: token + username."""
    token = create_token(HS256Key(JWT_KEY), "root", lifespan=300)
    frame = pack_frame(REQUEST_PING, b"", credential=token, plugin=AUTH_JWT, username="root")
    assert reply_rc(send_rpc(ctld.port, frame)) == 0
    bad = pack_frame(REQUEST_PING, b"", credential=create_token(HS256Key(os.urandom(48)), "root"),
                     plugin=AUTH_JWT, username="root")
    assert reply_rc(send_rpc(ctld.port, bad)) == SLURM_PROTOCOL_AUTHENTICATION_ERROR


# -- the package's kiosk serving real clients -------------------------------------------

def test_real_clients_as_unprivileged_user_through_the_package_kiosk(ctld, tmp_path):
    """scontrol ping and sinfo run as nobody, who cannot read slurm.key: their credentials
    come from `slurmauth-fast sackd` on a private socket, and slurmctld accepts them."""
    sock_dir = ctld.dir / "kiosk"          # nobody must reach it: pytest's tmp_path is 0700
    sock_dir.mkdir(mode=0o755, exist_ok=True)
    sock = sock_dir / "sack.socket"
    proc = subprocess.Popen(
        [sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--socket", str(sock),
         "--key", str(ctld.key_path), "--conf-dir", str(ctld.etc)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env=dict(os.environ, SLURM_CONF=str(ctld.conf)))
    try:
        for _ in range(200):
            if sock.exists():
                break
            time.sleep(0.05)
        assert sock.exists(), proc.stderr.read() if proc.poll() is not None else "no socket"
        env = ctld.env(SLURM_SACK_SOCKET=str(sock))
        with CaptureProxy(ctld.port) as proxy:
            env["SLURM_CONF"] = str(ctld.client_conf(proxy.port, "nobody.conf"))
            r = ctld.run("scontrol", "ping", env=env, user=(NOBODY_UID, NOBODY_GID))
            assert " is UP" in r.stdout
            r = ctld.run("sinfo", "-h", "-o", "%P", env=env, user=(NOBODY_UID, NOBODY_GID))
            assert "debug" in r.stdout
            frames = list(proxy.requests)
        keyring = Keyring.from_key_bytes(KEY)
        for frame in frames:
            cred = verify_rpc(frame, Verifier(keyring)).credential
            assert (cred.uid, cred.gid) == (NOBODY_UID, NOBODY_GID)
        # the same client pointed at a socket where no kiosk listens gets no credential:
        # the package's kiosk did the work above
        env["SLURM_SACK_SOCKET"] = str(sock_dir / "missing.socket")
        r = ctld.run("scontrol", "ping", env=env, user=(NOBODY_UID, NOBODY_GID), check=False)
        assert " is UP" not in r.stdout
    finally:
        proc.terminate()
        proc.wait(10)


# -- the shim answers byte for byte as slurmctld does -----------------------------------

@pytest.mark.parametrize("case", ["ping", "ping 24.11", "wrong key", "no credential"])
def test_shim_replies_equal_slurmctld_replies(ctld, keyring, case):
    from slurmauth_fast.frame_verifier import FrameVerifier
    from slurmauth_fast.shim import ControllerShim

    if case == "ping":
        frame = mint(keyring, REQUEST_PING)
    elif case == "ping 24.11":
        token = create_credential(keyring, uid=0, gid=0, ruid=0, version=0x2A00,
                                  payload=body_hash_payload(b"", REQUEST_PING))
        frame = pack_frame(REQUEST_PING, b"", credential=token, version=0x2A00)
    elif case == "wrong key":
        frame = mint(Keyring.from_key_bytes(os.urandom(64)), REQUEST_PING)
    else:
        frame = pack_frame(REQUEST_PING, b"", flags=0x0040)
    real = send_rpc(ctld.port, frame)
    assert real, "slurmctld answered nothing"
    shim = ControllerShim(FrameVerifier.from_slurm_conf(str(ctld.conf)))
    try:
        assert shim.answer(frame) == real
        # and over a socket, through the serving core
        port = shim.core.listen_tcp("127.0.0.1", 0)
        t = threading.Thread(target=shim.serve_forever, kwargs={"poll_ms": 50})
        t.start()
        try:
            assert send_rpc(port, frame) == real
        finally:
            shim.stop()
            t.join(10)
    finally:
        shim.close()
