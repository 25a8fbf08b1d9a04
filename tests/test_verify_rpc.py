"""verify_rpc end to end: real auth/slurm tokens (create_credential,
signed with real keys) checked by the real tokens.Verifier, then the body
hash against the frame's body and msg_type."""
import struct
import time

import pytest

from slurmauth_fast import errors as E
from slurmauth_fast import keys, tokens
from slurmauth_fast.rpc import (
    AUTH_JWT, AUTH_MUNGE, AUTH_NONE, HASH_K12, HASH_NONE, HASH_SHA3, NO_AUTH_CRED, REQUEST_PING,
    body_hash_payload, pack_frame, parse_frame, verify_rpc,
)

KEY = bytes(range(32))
OTHER_KEY = bytes(range(1, 33))
VERIFIER_UID = 4242
BODY = struct.pack(">I", 0) + b"some packed request body"


@pytest.fixture(scope="module")
def keyring():
    return keys.Keyring.from_key_bytes(KEY)


@pytest.fixture(scope="module")
def verifier(keyring):
    return tokens.Verifier(keyring, verifier_uid=VERIFIER_UID)


def frame(keyring, body=BODY, msg_type=REQUEST_PING, *, hash_type=HASH_K12, payload=..., **cred_kw):
    if payload is ...:
        payload = body_hash_payload(body, msg_type, hash_type)
    kw = dict(uid=1000, gid=1000, host="login1", ruid=VERIFIER_UID, payload=payload)
    kw.update(cred_kw)
    token = tokens.create_credential(keyring, **kw)
    return pack_frame(msg_type, body, credential=token)


@pytest.mark.parametrize("hash_type", [HASH_K12, HASH_SHA3, HASH_NONE])
def test_good_frames_verify(keyring, verifier, hash_type):
    data = frame(keyring, hash_type=hash_type)
    both = ("k12", "sha3")
    v = verify_rpc(data, verifier, hash_plugins=both)
    assert v.credential.uid == 1000 and v.credential.host == "login1"
    assert v.credential.payload == body_hash_payload(BODY, REQUEST_PING, hash_type)
    assert bytes(v.frame.body) == BODY and v.frame.msg_type == REQUEST_PING
    # an already-parsed frame works the same, and so does a frame without prefix
    assert verify_rpc(parse_frame(data), verifier, hash_plugins=both).credential == v.credential
    assert verify_rpc(data[4:], verifier, length_prefix=False,
                      hash_plugins=both).credential == v.credential


@pytest.mark.parametrize("plugins", [("k12",), ("hash/k12",), ()])
def test_sha3_needs_hash_plugin_sha3(keyring, verifier, plugins):
    """slurmctld loads hash/k12 alone unless HashPlugin lists hash/sha3, and then refuses a
    SHA3 payload as a hash type it does not know; k12 is always loaded."""
    data = frame(keyring, hash_type=HASH_SHA3)
    kw = {} if plugins == ("k12",) else {"hash_plugins": plugins}
    with pytest.raises(E.UnknownHashTypeError):
        verify_rpc(data, verifier, **kw)
    with pytest.raises(E.UnknownHashTypeError):
        verify_rpc(parse_frame(data), verifier, **kw)
    assert verify_rpc(frame(keyring), verifier, **kw).credential.uid == 1000
    assert verify_rpc(data, verifier, hash_plugins=("hash/k12", "hash/sha3")).credential.uid == 1000
    with pytest.raises(E.BadArgumentError, match="unknown hash plugin"):
        verify_rpc(data, verifier, hash_plugins=("md5",))


def test_sack_context_and_any_ruid_accepted(keyring, verifier):
    verify_rpc(frame(keyring, context="sack"), verifier)
    verify_rpc(frame(keyring, ruid=keys.SLURM_AUTH_UID_ANY), verifier)


def test_altered_body_is_rejected(keyring, verifier):
    data = bytearray(frame(keyring))
    data[-1] ^= 0x20
    with pytest.raises(E.BodyHashMismatchError):
        verify_rpc(bytes(data), verifier)


def test_altered_msg_type_is_rejected(keyring, verifier):
    data = bytearray(frame(keyring))
    data[8:10] = struct.pack(">H", REQUEST_PING + 1)     # header msg_type
    with pytest.raises(E.BodyHashMismatchError):
        verify_rpc(bytes(data), verifier)


def test_credential_replayed_onto_another_body(keyring, verifier):
    token = parse_frame(frame(keyring)).auth_cred
    replay = pack_frame(REQUEST_PING, BODY + b"!", credential=token)
    with pytest.raises(E.BodyHashMismatchError):
        verify_rpc(replay, verifier)


def test_null_and_none_hash_policies(keyring, verifier):
    no_payload = frame(keyring, payload=None)
    verify_rpc(no_payload, verifier)
    with pytest.raises(E.MissingBodyHashError):
        verify_rpc(no_payload, verifier, block_null_hash=True)
    none_form = frame(keyring, hash_type=HASH_NONE)
    with pytest.raises(E.BlockedNoneHashError):
        verify_rpc(none_form, verifier, block_zero_hash=True)
    wrong_type = frame(keyring, payload=body_hash_payload(BODY, REQUEST_PING + 1, HASH_NONE))
    with pytest.raises(E.BodyHashMsgTypeError):
        verify_rpc(wrong_type, verifier)


def test_token_checks_come_from_the_verifier(keyring, verifier):
    other = keys.Keyring.from_key_bytes(OTHER_KEY)
    with pytest.raises(E.SignatureError):
        verify_rpc(frame(other), verifier)
    with pytest.raises(E.ExpiredError):
        verify_rpc(frame(keyring, now=int(time.time()) - 3600), verifier)
    with pytest.raises(E.AudienceError):
        verify_rpc(frame(keyring, ruid=VERIFIER_UID + 1), verifier)
    with pytest.raises(E.AudienceError):
        verify_rpc(frame(keyring, context="launch"), verifier)


def test_signature_is_checked_before_the_body_hash(keyring, verifier):
    # a forged token with a wrong body hash fails on the signature, not the hash
    other = keys.Keyring.from_key_bytes(OTHER_KEY)
    with pytest.raises(E.SignatureError):
        verify_rpc(frame(other, payload=b"\x02" + bytes(32)), verifier)


@pytest.mark.parametrize("payload", [b"\x09\x00\x00", b"\x02" + bytes(32)],
                         ids=["unknown hash type", "wrong K12 digest"])
@pytest.mark.parametrize("parsed", [False, True], ids=["bytes", "RpcFrame"])
def test_identity_is_checked_before_the_body_hash(keyring, payload, parsed):
    # slurmctld refuses a malformed "id" (use_client_ids) in auth_g_verify, before _check_hash;
    # the fused C call checks the hash first and the "id" object is parsed in Python after it
    data = frame(keyring, payload=payload, extra={"id": {"gecos": "", "dir": "/", "shell": "/"}})
    if parsed:
        data = parse_frame(data)
    with_ids = tokens.Verifier(keyring, verifier_uid=VERIFIER_UID, use_client_ids=True)
    with pytest.raises(E.IdentityError, match="missing field 'name'"):
        verify_rpc(data, with_ids)
    # without use_client_ids the "id" object is ignored, so the body hash decides
    with pytest.raises(E.BodyHashError):
        verify_rpc(data, tokens.Verifier(keyring, verifier_uid=VERIFIER_UID))


def test_frames_without_an_auth_slurm_token(keyring, verifier):
    with pytest.raises(E.MissingCredentialError):
        verify_rpc(pack_frame(REQUEST_PING, BODY, flags=NO_AUTH_CRED), verifier)
    with pytest.raises(E.MissingCredentialError):
        verify_rpc(pack_frame(REQUEST_PING, BODY, credential=None), verifier)
    for plugin, cred in ((AUTH_NONE, None), (AUTH_MUNGE, "MUNGE:abc:"), (AUTH_JWT, "a.b.c")):
        with pytest.raises(E.UnsupportedAuthPluginError):
            verify_rpc(pack_frame(REQUEST_PING, BODY, plugin=plugin, credential=cred), verifier)


def test_frame_errors_surface_before_verification(verifier):
    with pytest.raises(E.FrameTruncatedError):
        verify_rpc(b"\x00\x00\x00\x10\x2d\x00", verifier)
