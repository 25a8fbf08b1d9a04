"""HashPlugin against a real slurmctld 26.05: with hash/k12 and hash/sha3 loaded, a SHA3-256
body hash is accepted by slurmctld and by the package's verifier built from the same
slurm.conf; with the default (hash/k12) both refuse it (tests/test_real_slurm_differential.py)."""
from __future__ import annotations

import os

import pytest

from real_slurm import SlurmCluster, reply_rc, send_rpc
from slurmauth_fast.bodyhash import HASH_K12, HASH_SHA3, body_hash_payload
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import REQUEST_PING, pack_frame
from slurmauth_fast.tokens import create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, hash_plugin="hash/k12,hash/sha3").start()
    yield cluster
    cluster.cleanup()


@pytest.mark.parametrize("hash_type", [HASH_SHA3, HASH_K12])
def test_sha3_accepted_when_loaded(ctld, hash_type):
    token = create_credential(Keyring.from_key_bytes(KEY), uid=0, gid=0, ruid=0,
                              payload=body_hash_payload(b"", REQUEST_PING, hash_type))
    frame = pack_frame(REQUEST_PING, b"", credential=token)
    assert reply_rc(send_rpc(ctld.port, frame)) == 0
    fv = FrameVerifier.from_slurm_conf(str(ctld.conf))
    assert fv.hash_plugins == ("k12", "sha3")
    assert fv.verify(frame).credential.payload[0] == hash_type
