"""auth/munge RPC frames end to end: pack_munge_rpc / verify_munge_rpc against a
real munged (tests/munged.py), with the wire parser and body-hash check of
slurmauth_fast.rpc / bodyhash. Skips when munged or libmunge is absent."""
from __future__ import annotations

import os
import pwd
import subprocess

import pytest

from slurmauth_fast import errors
from slurmauth_fast.bodyhash import HASH_K12, HASH_NONE, HASH_SHA3, body_hash_payload
from slurmauth_fast.munge import (MungeContext, VerifiedMungeRpc, check_uid_restriction_enforced,
                                  pack_munge_rpc, verify_munge_rpc)
from slurmauth_fast.rpc import (AUTH_MUNGE, AUTH_SLURM, NO_AUTH_CRED, REQUEST_PING, pack_frame,
                                parse_frame)

from munged import MUNGE_CLI, MungedDaemon, munged, run_as, skip_unless_munge

__all__ = ["munged"]  # the fixture, imported for pytest

REQUEST_JOB_INFO = 2003  # any other msg_type
BODY = b"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01"


@pytest.fixture
def ctx(munged):
    return MungeContext(socket=munged.socket)


@pytest.mark.parametrize("hash_type", [HASH_K12, HASH_SHA3, HASH_NONE])
def test_round_trip(ctx, hash_type):
    frame = pack_munge_rpc(REQUEST_JOB_INFO, BODY, context=ctx, hash_type=hash_type)
    v = verify_munge_rpc(frame, context=ctx, hash_plugins=("k12", "sha3"))
    assert isinstance(v, VerifiedMungeRpc)
    assert v.frame.auth_plugin == AUTH_MUNGE and v.frame.msg_type == REQUEST_JOB_INFO
    assert bytes(v.frame.body) == BODY
    assert (v.credential.uid, v.credential.gid) == (os.getuid(), os.getgid())
    assert v.credential.payload == body_hash_payload(BODY, REQUEST_JOB_INFO, hash_type)


def test_frame_layout_is_plugin_101_packstr(ctx):
    frame = pack_munge_rpc(REQUEST_PING, b"", context=ctx)
    f = parse_frame(frame)
    cred = f.auth_cred
    assert cred.startswith(b"MUNGE:") and cred.endswith(b":")
    # uint32 plugin id 101, then packstr: uint32 length including the NUL, bytes, NUL
    auth = frame[f.auth_offset:f.body_offset]
    assert auth == (101).to_bytes(4, "big") + (len(cred) + 1).to_bytes(4, "big") + cred + b"\0"


def test_socket_shortcut_and_parsed_frame(munged):
    frame = pack_munge_rpc(REQUEST_PING, b"", socket=munged.socket)
    v = verify_munge_rpc(parse_frame(frame), socket=munged.socket)
    assert v.frame.msg_type == REQUEST_PING


def test_without_length_prefix(ctx):
    frame = pack_munge_rpc(REQUEST_PING, BODY, context=ctx, length_prefix=False)
    assert bytes(verify_munge_rpc(frame, context=ctx, length_prefix=False).frame.body) == BODY


def test_altered_body_is_refused_and_credential_consumed(ctx):
    frame = bytearray(pack_munge_rpc(REQUEST_JOB_INFO, BODY, context=ctx))
    good = bytes(frame)
    frame[-1] ^= 1
    with pytest.raises(errors.BodyHashMismatchError):
        verify_munge_rpc(bytes(frame), context=ctx)
    # munged decoded the credential before the hash check: it is now in the replay cache
    with pytest.raises(errors.MungeReplayedError):
        verify_munge_rpc(good, context=ctx)


def test_credential_moved_to_another_message(ctx):
    f = parse_frame(pack_munge_rpc(REQUEST_JOB_INFO, BODY, context=ctx))
    other_type = pack_frame(REQUEST_PING, BODY, credential=f.auth_cred, plugin=AUTH_MUNGE)
    with pytest.raises(errors.BodyHashMismatchError):
        verify_munge_rpc(other_type, context=ctx)
    f2 = parse_frame(pack_munge_rpc(REQUEST_JOB_INFO, BODY, context=ctx))
    other_body = pack_frame(REQUEST_JOB_INFO, BODY + b"\0", credential=f2.auth_cred, plugin=AUTH_MUNGE)
    with pytest.raises(errors.BodyHashMismatchError):
        verify_munge_rpc(other_body, context=ctx)


def test_replayed_frame(ctx):
    frame = pack_munge_rpc(REQUEST_PING, b"", context=ctx)
    verify_munge_rpc(frame, context=ctx)
    with pytest.raises(errors.MungeReplayedError) as ei:
        verify_munge_rpc(frame, context=ctx)
    assert ei.value.slurm_errno == errors.ESLURM_AUTH_CRED_INVALID


def test_no_payload_and_block_null_hash(ctx):
    assert verify_munge_rpc(pack_munge_rpc(REQUEST_PING, BODY, context=ctx, hash_type=None),
                            context=ctx).credential.payload == b""
    with pytest.raises(errors.MissingBodyHashError):
        verify_munge_rpc(pack_munge_rpc(REQUEST_PING, BODY, context=ctx, hash_type=None),
                         context=ctx, block_null_hash=True)


def test_none_hash_and_block_zero_hash(ctx):
    frame = pack_munge_rpc(REQUEST_PING, BODY, context=ctx, hash_type=HASH_NONE)
    with pytest.raises(errors.BlockedNoneHashError):
        verify_munge_rpc(frame, context=ctx, block_zero_hash=True)
    # block_null_hash alone does not refuse the NONE form
    verify_munge_rpc(pack_munge_rpc(REQUEST_PING, BODY, context=ctx, hash_type=HASH_NONE),
                     context=ctx, block_null_hash=True)


def test_wrong_plugin_and_missing_credential(ctx):
    with pytest.raises(errors.UnsupportedAuthPluginError):
        verify_munge_rpc(pack_frame(REQUEST_PING, b"", credential="a.b.c", plugin=AUTH_SLURM), context=ctx)
    with pytest.raises(errors.MissingCredentialError):
        verify_munge_rpc(pack_frame(REQUEST_PING, b"", flags=NO_AUTH_CRED), context=ctx)
    with pytest.raises(errors.MissingCredentialError):
        verify_munge_rpc(pack_frame(REQUEST_PING, b"", plugin=AUTH_MUNGE), context=ctx)


def test_malformed_frame_refused_before_munged(ctx):
    frame = pack_munge_rpc(REQUEST_PING, BODY, context=ctx)
    with pytest.raises(errors.FrameError):
        verify_munge_rpc(frame[:-1], context=ctx)
    # the credential was never sent to munged, so the intact frame still verifies
    verify_munge_rpc(frame, context=ctx)


def test_garbage_credential_in_frame(ctx):
    with pytest.raises(errors.MungeBadCredentialError):
        verify_munge_rpc(pack_frame(REQUEST_PING, b"", plugin=AUTH_MUNGE, credential="not munge"),
                         context=ctx)


def test_foreign_munge_key(ctx):
    with MungedDaemon() as other:
        frame = pack_munge_rpc(REQUEST_PING, BODY, socket=other.socket)
    with pytest.raises(errors.MungeCredentialInvalidError):
        verify_munge_rpc(frame, context=ctx)


def test_context_and_socket_exclusive(ctx, munged):
    with pytest.raises(errors.MungeBadArgumentError):
        verify_munge_rpc(b"", context=ctx, socket=munged.socket)


@pytest.mark.skipif(MUNGE_CLI is None, reason="munge command not installed")
def test_frame_with_credential_from_munge_command(ctx, munged, tmp_path):
    # A credential minted by the munge tool with the body hash as its payload
    # verifies: the payload is carried as plain bytes, as Slurm's sender does.
    p = tmp_path / "payload"
    p.write_bytes(body_hash_payload(BODY, REQUEST_JOB_INFO, HASH_K12))
    cred = subprocess.run([MUNGE_CLI, "-S", munged.socket, "-i", str(p)],
                          check=True, capture_output=True, text=True).stdout.strip()
    frame = pack_frame(REQUEST_JOB_INFO, BODY, credential=cred, plugin=AUTH_MUNGE)
    assert verify_munge_rpc(frame, context=ctx).credential.uid == os.getuid()


def test_uid_restricted_rpc(munged):
    nobody = pwd.getpwnam("nobody")
    restricted = MungeContext(socket=munged.socket, uid_restriction=nobody.pw_uid)
    frame = pack_munge_rpc(REQUEST_PING, BODY, context=restricted)
    with pytest.raises(errors.MungeUnauthorizedError):
        verify_munge_rpc(frame, socket=munged.socket)
    if os.geteuid() != 0:
        pytest.skip("the positive half needs root to become another user")
    frame = pack_munge_rpc(REQUEST_PING, BODY, context=restricted)
    cred = run_as(nobody.pw_uid, nobody.pw_gid,
                  lambda: verify_munge_rpc(frame, socket=munged.socket).credential)
    assert cred.uid == os.getuid() and cred.uid_restriction == nobody.pw_uid


def test_uid_restriction_self_test(ctx):
    check_uid_restriction_enforced(ctx)


def test_uid_restriction_self_test_munged_down():
    skip_unless_munge()
    with MungedDaemon() as d:
        down = MungeContext(socket=d.socket)
    with pytest.raises(errors.MungeSocketError):
        check_uid_restriction_enforced(down)
