"""verify_rpc / FrameVerifier.verify and the per-thread scratch: the frame is
checked (version, length, cap) before any scratch is grown, the scratch is
sized for the credential (never for the frame) and what a thread keeps is
bounded; the library's default frame cap for verification is 64 MiB, with an
explicit max_frame= override."""
import os
import threading

import pytest

from slurmauth_fast import errors, rpc
from slurmauth_fast._bindings import lib
from slurmauth_fast._bindings import slurmcred as sc
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.jws import DEFAULT_MAX_TOKEN
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

MSG = 2009
MiB = 1 << 20
#: the most a thread may keep: enough for the longest token a default Verifier accepts
KEEP = lib.sc_scratch_need(DEFAULT_MAX_TOKEN)


@pytest.fixture(scope="module")
def ring():
    return Keyring.from_key_bytes(os.urandom(64))


@pytest.fixture(scope="module")
def verifier(ring):
    return Verifier(ring, verifier_uid=0)


def token(ring, body, extra=0):
    """A token binding ``body``, ``extra`` bytes longer (a long host name)."""
    payload = body_hash_payload(body, MSG, rpc.HASH_K12)
    return create_credential(ring, uid=1000, gid=1000, host="n" * (1 + extra), payload=payload)


def in_fresh_thread(fn):
    """Run fn in a new thread (its own, empty scratch); return (result or
    exception, that thread's scratch size or None)."""
    out = {}

    def run():
        try:
            out["r"] = fn()
        except Exception as e:  # reported to the caller
            out["r"] = e
        s = getattr(sc.local, "s", None)
        out["size"] = None if s is None else s[2]

    t = threading.Thread(target=run)
    t.start()
    t.join(120)
    assert not t.is_alive()
    return out["r"], out["size"]


def test_default_cap_is_64_mib_for_verification():
    assert rpc.VERIFY_MAX_FRAME == 64 * MiB
    assert rpc.MAX_FRAME == 1024 * MiB  # parse_frame keeps Slurm's own cap


def test_large_garbage_frame_leaves_the_scratch_bounded(ring, verifier):
    """50 MiB: a well-formed header and auth section with a huge body and a
    token that does not verify (Slurm's cap would let it through)."""
    body = bytes(50 * MiB)
    frame = rpc.pack_frame(MSG, body, credential=token(ring, b"another body"))
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier))
    assert isinstance(r, errors.SlurmAuthError), r
    assert size is not None and size <= KEEP, f"the thread kept {size} bytes of scratch"


def test_garbage_token_in_a_large_frame_keeps_the_scratch_small(ring, verifier):
    frame = rpc.pack_frame(MSG, bytes(20 * MiB), credential="x" * 100)
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier))
    assert isinstance(r, errors.SlurmAuthError), r
    assert size is not None and size <= sc.BASE_SCRATCH


@pytest.mark.parametrize("length_prefix", [True, False])
def test_frame_over_the_default_cap_is_refused_before_any_scratch(ring, verifier, length_prefix):
    body = bytes(64 * MiB + 1)
    frame = rpc.pack_frame(MSG, body, credential=token(ring, body), length_prefix=length_prefix)
    r, size = in_fresh_thread(lambda: FrameVerifier(verifier, length_prefix=length_prefix).verify(frame))
    assert isinstance(r, errors.FrameTooLargeError), r
    assert size is None  # no scratch at all in that thread
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier, length_prefix=length_prefix))
    assert isinstance(r, errors.FrameTooLargeError), r
    assert size is None
    # an explicit max_frame lets it through, and it verifies
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier, max_frame=128 * MiB,
                                                     length_prefix=length_prefix))
    assert not isinstance(r, Exception), r
    assert r.credential.uid == 1000 and len(r.frame.body) == len(body)
    assert size <= sc.BASE_SCRATCH


def test_large_token_grows_the_scratch_only_as_far_as_it_needs(ring, verifier):
    body = b"\0\0\0\1"
    tok = token(ring, body, extra=100_000)
    frame = rpc.pack_frame(MSG, body, credential=tok)
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier))
    assert not isinstance(r, Exception), r
    assert r.credential.uid == 1000
    assert lib.sc_scratch_need(len(tok)) <= size <= KEEP


def test_token_over_max_len_is_refused_as_such(ring, verifier):
    body = b"\0\0\0\1"
    tok = token(ring, body, extra=DEFAULT_MAX_TOKEN)
    frame = rpc.pack_frame(MSG, body, credential=tok)
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, verifier))
    assert isinstance(r, errors.TokenTooLargeError), r
    assert size is not None and size <= KEEP


def test_a_thread_never_keeps_more_than_the_bound(ring):
    """A Verifier with a large max_len still verifies a large token, from a
    scratch that is not kept."""
    big = Verifier(ring, verifier_uid=0, max_len=16 * MiB)
    body = b"\0\0\0\1"
    tok = token(ring, body, extra=2 * MiB)
    frame = rpc.pack_frame(MSG, body, credential=tok)
    r, size = in_fresh_thread(lambda: rpc.verify_rpc(frame, big))
    assert not isinstance(r, Exception), r
    assert size is None or size <= sc.SCRATCH_KEEP_MAX
    r, size = in_fresh_thread(lambda: big.verify(tok))
    assert not isinstance(r, Exception), r
    assert size is None or size <= sc.SCRATCH_KEEP_MAX
