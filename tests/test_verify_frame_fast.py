"""verify_rpc's one C call (csrc/verify_frame.c: parse + token + body hash,
with a complete verdict) against the step-by-step path (parse_frame,
Verifier.verify, check_body_hash): same result for good frames, same
exception for bad ones, and the C entry point itself answers non-zero for
every kind of bad frame."""
import os

import pytest

from slurmauth_fast import errors, rpc
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.bodyhash import HASH_NONE, HASH_SHA3, body_hash_payload
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

BODY = b"\x00\x00\x00\x2a" + bytes(range(40))
MSG = 2009


@pytest.fixture(scope="module")
def ring():
    return Keyring.from_key_bytes(os.urandom(64))


@pytest.fixture(scope="module")
def verifier(ring):
    return Verifier(ring, verifier_uid=0)


def _token(ring, body=BODY, msg=MSG, hash_type=rpc.HASH_K12, **kw):
    payload = body_hash_payload(body, msg, hash_type) if hash_type else None
    return create_credential(ring, uid=1000, gid=1000, host="n1", payload=payload, **kw)


def _c_status(frame, verifier, flags=0):
    scratch = ffi.new("uint8_t[]", lib.sc_scratch_need(len(frame)))
    f = ffi.new("sa_rpc_frame *")
    opts, _, _ = rpc.parse_options()
    return lib.sa_verify_frame_slurm(frame, len(frame), opts, f,   # flags 0: SHA3 allowed
                                     verifier.keyring.snapshot().keyset, verifier.c_policy, -1,
                                     flags, scratch, len(scratch), ffi.NULL)


def _steps(frame, verifier, **kw):
    """verify_rpc step by step: parse_frame, then the parsed frame's token
    (Verifier.verify) and body hash (check_body_hash)."""
    return rpc.verify_rpc(rpc.parse_frame(frame), verifier, **kw)


def _both(frame, verifier, **kw):
    """(one-call result or exception, step-by-step result or exception)."""
    out = []
    for call in (rpc.verify_rpc, _steps):
        try:
            out.append(call(frame, verifier, **kw))
        except errors.SlurmAuthError as e:
            out.append(e)
    return out


@pytest.mark.parametrize("hash_type", [rpc.HASH_K12, HASH_SHA3, HASH_NONE])
def test_good_frames_agree(ring, verifier, hash_type):
    frame = rpc.pack_frame(MSG, BODY, credential=_token(ring, hash_type=hash_type),
                           orig_addr=("10.1.2.3", 6817),
                           forward=rpc.Forward(cnt=2, nodelist="n[1-2]", timeout=10,
                                               tree_width=50, tree_depth=1))
    assert _c_status(frame, verifier) == 0
    fast, slow = _both(frame, verifier, hash_plugins=("k12", "sha3"))
    assert fast.credential == slow.credential
    assert repr(fast.frame) == repr(slow.frame)
    assert bytes(fast.frame.body) == bytes(slow.frame.body) == BODY
    assert fast.frame.auth_cred == slow.frame.auth_cred
    assert (fast.frame.orig_addr, fast.frame.forward) == (slow.frame.orig_addr, slow.frame.forward)


def _bad_frames(ring):
    good = _token(ring)
    yield "body altered", rpc.pack_frame(MSG, BODY[:-1] + b"\xff", credential=good), \
        errors.BodyHashMismatchError
    yield "msg_type altered", rpc.pack_frame(MSG + 1, BODY, credential=good), \
        errors.BodyHashMismatchError
    bad_sig = good[:-2] + ("AA" if not good.endswith("AA") else "BA")
    yield "signature", rpc.pack_frame(MSG, BODY, credential=bad_sig), errors.SignatureError
    yield "expired", rpc.pack_frame(MSG, BODY, credential=_token(ring, ttl=1, now=1000)), \
        errors.ExpiredError
    yield "ruid", rpc.pack_frame(MSG, BODY, credential=_token(ring, ruid=4242)), errors.AudienceError
    yield "no payload (blocked)", rpc.pack_frame(MSG, BODY, credential=_token(ring, hash_type=None)), \
        errors.MissingBodyHashError
    yield "NO_AUTH_CRED", rpc.pack_frame(MSG, BODY, flags=rpc.NO_AUTH_CRED), errors.MissingCredentialError
    yield "munge plugin", rpc.pack_frame(MSG, BODY, credential="MUNGE:x", plugin=rpc.AUTH_MUNGE), \
        errors.UnsupportedAuthPluginError
    yield "NULL token", rpc.pack_frame(MSG, BODY, credential=None), errors.MissingCredentialError
    yield "truncated", rpc.pack_frame(MSG, BODY, credential=good)[:-1], errors.FrameError


@pytest.mark.parametrize("case", range(10))
def test_bad_frames_same_error_both_paths(ring, verifier, case):
    name, frame, exc = list(_bad_frames(ring))[case]
    flags = lib.SA_BH_BLOCK_NULL_HASH if name.startswith("no payload") else 0
    assert _c_status(frame, verifier, flags) != 0, name
    fast, slow = _both(frame, verifier, block_null_hash=bool(flags))
    assert isinstance(fast, exc) and type(fast) is type(slow), (name, fast, slow)
    assert str(fast) == str(slow)


@pytest.mark.parametrize("now", [-1, -5, 1.5, True, "1"])
def test_bad_now_refused_like_verify(ring, verifier, now):
    frame = rpc.pack_frame(MSG, BODY, credential=_token(ring))
    with pytest.raises(errors.BadArgumentError):
        rpc.verify_rpc(frame, verifier, now=now)
    with pytest.raises(errors.BadArgumentError):
        verifier.verify(_token(ring), now=now)


def test_explicit_now_is_used(ring, verifier):
    frame = rpc.pack_frame(MSG, BODY, credential=_token(ring, ttl=60, now=10_000))
    assert rpc.verify_rpc(frame, verifier, now=10_030).credential.iat == 10_000
    with pytest.raises(errors.ExpiredError):
        rpc.verify_rpc(frame, verifier, now=10_061)


def test_versions_and_max_frame_apply_on_the_fast_path(ring, verifier):
    frame = rpc.pack_frame(MSG, BODY, credential=_token(ring))
    assert rpc.verify_rpc(frame, verifier, max_frame=len(frame)).credential.uid == 1000
    with pytest.raises(errors.FrameTooLargeError):
        rpc.verify_rpc(frame, verifier, max_frame=len(frame) - 5)
    with pytest.raises(errors.ProtocolVersionError):
        rpc.verify_rpc(frame, verifier, versions=(0x2E00,))
    old = rpc.pack_frame(MSG, BODY, credential=_token(ring), version=0x2A00)
    assert rpc.verify_rpc(old, verifier, versions=rpc.supported_versions(0x2D00)).frame.version == 0x2A00
    with pytest.raises(errors.ProtocolVersionError):
        rpc.verify_rpc(old, verifier, versions=rpc.supported_versions(0x2E00))
