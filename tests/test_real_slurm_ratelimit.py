"""The rl_* rate limit decided by the package as a real slurmctld 26.05 decides it
(SlurmctldParameters=rl_enable,...): the same sequence of requests gets the same answers,
and an over-limit request is answered with rc 1804 (SLURMCTLD_COMMUNICATIONS_BACKOFF)."""
from __future__ import annotations

import os

import pytest

from real_slurm import SlurmCluster, reply_rc, send_rpc
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.keys import Keyring
from slurmauth_fast.ratelimit import SLURMCTLD_COMMUNICATIONS_BACKOFF, RateLimitConfig, RateLimiter
from slurmauth_fast.rpc import REQUEST_PING, pack_frame
from slurmauth_fast.slurmconf import read_slurm_conf
from slurmauth_fast.tokens import create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)
# a refill period of a day: no refill can happen while the test runs (but at midnight UTC)
PARAMS = "rl_enable,rl_bucket_size=4,rl_refill_rate=1,rl_refill_period=86400"


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, slurmctld_parameters=PARAMS).start()
    yield cluster
    cluster.cleanup()


def ping(uid):
    token = create_credential(Keyring.from_key_bytes(KEY), uid=uid, gid=uid, ruid=0,
                              payload=body_hash_payload(b"", REQUEST_PING))
    return pack_frame(REQUEST_PING, b"", credential=token)


def test_config_read_from_slurm_conf(ctld):
    cfg = RateLimitConfig.from_slurm_conf(read_slurm_conf(str(ctld.conf)))
    assert cfg == RateLimitConfig(enabled=True, bucket_size=4, refill_rate=1, refill_period=86400)


@pytest.mark.parametrize("uid", [1000, 0])
def test_same_decisions_as_slurmctld(ctld, uid):
    conf = read_slurm_conf(str(ctld.conf))
    ours = RateLimiter(RateLimitConfig.from_slurm_conf(conf), slurm_user_uid=conf.slurm_user_uid)
    real = [reply_rc(send_rpc(ctld.port, ping(uid))) for _ in range(7)]
    mine = [SLURMCTLD_COMMUNICATIONS_BACKOFF if ours.exceeded(uid, REQUEST_PING) else 0
            for _ in range(7)]
    assert real == mine
    assert real == ([0] * 4 + [1804] * 3 if uid else [0] * 7)
