"""auth/munge against a real slurmctld 26.05 (AuthType=auth/munge) on the suite's private
munged: real frames verify with verify_munge_rpc, package frames are accepted, and a
replayed credential is refused by both."""
from __future__ import annotations

import os

import pytest

from munged import munged, skip_unless_munge
from real_slurm import CaptureProxy, SlurmCluster, reply_rc, send_rpc
from slurmauth_fast import errors as E
from slurmauth_fast.bodyhash import HASH_K12, body_hash_payload
from slurmauth_fast.munge import pack_munge_rpc, verify_munge_rpc
from slurmauth_fast.rpc import AUTH_MUNGE, REQUEST_PING, parse_frame

__all__ = ["munged"]  # the fixture, imported for pytest
pytestmark = pytest.mark.real_slurm

REQUEST_BUILD_INFO = 2001
RESPONSE_BUILD_INFO = 2002


@pytest.fixture(scope="module")
def ctld(munged):
    skip_unless_munge()
    cluster = SlurmCluster(auth="auth/munge", munge_socket=munged.socket).start()
    yield cluster
    cluster.cleanup()


def capture_ping(ctld):
    """A REQUEST_PING frame real `scontrol ping` sends, not passed on (its credential unused)."""
    with CaptureProxy(None) as proxy:
        r = ctld.run("scontrol", "ping", env=ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port))))
        assert " is UP" in r.stdout
        return proxy.requests[0]


def test_real_munge_frame_verifies(ctld, munged):
    frame = capture_ping(ctld)
    assert parse_frame(frame).auth_plugin == AUTH_MUNGE
    v = verify_munge_rpc(frame, socket=munged.socket)
    assert (v.credential.uid, v.credential.gid) == (os.getuid(), os.getgid())
    assert v.credential.payload == body_hash_payload(b"", REQUEST_PING, HASH_K12)
    # munged has seen it now: a second decode is a replay, and so is slurmctld's
    with pytest.raises(E.MungeReplayedError):
        verify_munge_rpc(frame, socket=munged.socket)
    assert reply_rc(send_rpc(ctld.port, frame)) == 1007


def test_real_munge_frame_with_changed_body_is_refused(ctld, munged):
    frame = capture_ping(ctld)
    bad = frame[:8] + (REQUEST_BUILD_INFO).to_bytes(2, "big") + frame[10:]
    with pytest.raises(E.BodyHashMismatchError):
        verify_munge_rpc(bad, socket=munged.socket)


def test_package_munge_frames_are_accepted_and_replays_refused(ctld, munged):
    frame = pack_munge_rpc(REQUEST_PING, b"", socket=munged.socket)
    assert reply_rc(send_rpc(ctld.port, frame)) == 0
    assert reply_rc(send_rpc(ctld.port, frame)) == 1007          # the same credential again
    body = (0).to_bytes(8, "big")
    info = pack_munge_rpc(REQUEST_BUILD_INFO, body, socket=munged.socket)
    assert parse_frame(send_rpc(ctld.port, info)).msg_type == RESPONSE_BUILD_INFO
