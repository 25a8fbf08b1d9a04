"""`slurmauth-fast proxy` in front of a real slurmctld 26.05: real clients work through it,
slurmctld sees each client's own address (DebugFlags=AuditRPCs), forged requests never
reach slurmctld, and a user over the rl_* limit gets Slurm's own back-off."""
from __future__ import annotations

import os
import re
import threading
import time

import pytest

from real_slurm import NOBODY_GID, NOBODY_UID, SlurmCluster, reply_rc, send_rpc
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.keys import Keyring
from slurmauth_fast.proxy import ControllerProxy
from slurmauth_fast.ratelimit import RateLimitConfig
from slurmauth_fast.rpc import REQUEST_PING, pack_frame
from slurmauth_fast.slurmconf import read_slurm_conf
from slurmauth_fast.tokens import create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)
RL = "rl_enable,rl_bucket_size=3,rl_refill_rate=1,rl_refill_period=1"


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, debug_flags="AuditRPCs", debug="verbose",
                           slurmctld_parameters=RL).start()
    yield cluster
    cluster.cleanup()


class RunningProxy:
    """The proxy configured by the cluster's own slurm.conf, serving in a thread."""

    def __init__(self, ctld, **kw):
        conf = read_slurm_conf(str(ctld.conf))
        self.proxy = ControllerProxy(FrameVerifier.from_slurm_conf(str(ctld.conf)),
                                     ("127.0.0.1", ctld.port),
                                     rate_limit=RateLimitConfig.from_slurm_conf(conf),
                                     slurm_user_uid=conf.slurm_user_uid, **kw)
        self.port = self.proxy.core.listen_tcp("127.0.0.1", 0)
        self.thread = threading.Thread(target=self.proxy.serve_forever, kwargs={"poll_ms": 100})
        self.thread.start()

    def close(self):
        self.proxy.stop()
        self.thread.join(10)
        self.proxy.close()


@pytest.fixture
def proxy(ctld):
    running = RunningProxy(ctld)
    yield running
    running.close()


def ping(uid=0, key=KEY):
    token = create_credential(Keyring.from_key_bytes(key), uid=uid, gid=uid, ruid=0,
                              payload=body_hash_payload(b"", REQUEST_PING))
    return pack_frame(REQUEST_PING, b"", credential=token)


def audited_clients(ctld, since: int):
    """(uid, client address) of each RPC slurmctld logged after byte ``since`` of its log."""
    text = ctld.log_text()[since:]
    return re.findall(r"msg_type=REQUEST_PING uid=(\d+) client=\[([0-9.]+):\d+\]", text)


def wait_audit(ctld, since, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = audited_clients(ctld, since)
        if len(found) >= n:
            return found
        time.sleep(0.05)
    return audited_clients(ctld, since)


def test_slurmctld_sees_each_clients_own_address(ctld, proxy):
    since = len(ctld.log_text())
    for source in ("127.0.0.7", "127.0.0.9"):
        assert reply_rc(send_rpc(proxy.port, ping(), source=source)) == 0
    assert wait_audit(ctld, since, 2) == [("0", "127.0.0.7"), ("0", "127.0.0.9")]


def test_without_transparency_slurmctld_sees_the_proxy(ctld):
    running = RunningProxy(ctld, transparent="off")
    try:
        since = len(ctld.log_text())
        assert reply_rc(send_rpc(running.port, ping(), source="127.0.0.7")) == 0
        assert wait_audit(ctld, since, 1) == [("0", "127.0.0.1")]
    finally:
        running.close()


def test_real_clients_work_through_the_proxy(ctld, proxy):
    env = ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port)))
    assert " is UP" in ctld.run("scontrol", "ping", env=env).stdout
    assert "debug" in ctld.run("sinfo", "-h", "-o", "%P", env=env).stdout
    ctld.run("squeue", env=env)


def test_forged_requests_never_reach_slurmctld(ctld, proxy):
    since = len(ctld.log_text())
    for _ in range(20):
        assert reply_rc(send_rpc(proxy.port, ping(key=os.urandom(64)))) == 1007
    assert reply_rc(send_rpc(proxy.port, ping())) == 0
    time.sleep(0.2)
    assert wait_audit(ctld, since, 1) == [("0", "127.0.0.1")]      # only the good one
    assert "decode_jwt" not in ctld.log_text()[since:]


def test_over_the_limit_gets_slurms_back_off(ctld, proxy):
    """uid 1000 has a bucket of 3; the proxy answers the rest with rc 1804 itself."""
    rcs = [reply_rc(send_rpc(proxy.port, ping(uid=1000))) for _ in range(6)]
    assert rcs[:3] == [0, 0, 0] and 1804 in rcs[3:]
    assert proxy.proxy.limiter.over_limit[1000] >= 1
    # root is exempt
    assert all(reply_rc(send_rpc(proxy.port, ping(uid=0))) == 0 for _ in range(6))


def test_real_client_backs_off_and_retries(ctld, proxy, tmp_path):
    """A real sinfo run as nobody, its bucket empty: the proxy answers 1804, and sinfo (through
    slurm_send_recv_controller_msg) sleeps, retries, and succeeds once a token has been
    refilled (1 per second), as it would against slurmctld's own limit."""
    for _ in range(5):
        send_rpc(proxy.port, ping(uid=NOBODY_UID))                  # empty nobody's bucket
    refused = proxy.proxy.limiter.over_limit[NOBODY_UID]
    env = ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port, "nobody-proxy.conf")))
    start = time.monotonic()
    r = ctld.run("sinfo", "-h", "-o", "%P", "-v", env=env, user=(NOBODY_UID, NOBODY_GID))
    assert "debug" in r.stdout
    assert "RPC rate limited" in r.stderr                          # the client's own back-off
    assert proxy.proxy.limiter.over_limit[NOBODY_UID] > refused
    assert time.monotonic() - start >= 0.9
