"""AuthInfo=use_client_ids against a real slurmctld 26.05: real clients' credentials carry
the "id" object; the package verifies them, reads the identity, and re-mints them byte for
byte; slurmctld accepts a package credential carrying an identity."""
from __future__ import annotations

import os
import pwd

import pytest

from real_slurm import CaptureProxy, SlurmCluster, reply_rc, send_rpc
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import REQUEST_PING, pack_frame, parse_frame, verify_rpc
from slurmauth_fast.tokens import Verifier, create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY, auth_info="use_client_ids").start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module")
def frames(ctld):
    with CaptureProxy(ctld.port) as proxy:
        env = ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port)))
        ctld.run("scontrol", "ping", env=env)
        ctld.run("sinfo", env=env)
        return list(proxy.requests)


def test_client_ids_credentials_verify_and_remint_byte_identical(frames):
    keyring = Keyring.from_key_bytes(KEY)
    me = pwd.getpwuid(os.getuid())
    for frame in frames:
        cred = verify_rpc(frame, Verifier(keyring, use_client_ids=True)).credential
        assert cred.identity is not None
        assert cred.identity.name == me.pw_name and cred.identity.dir == me.pw_dir
        token = parse_frame(frame).auth_cred
        again = create_credential(keyring, uid=cred.uid, gid=cred.gid, host=cred.host,
                                  context=cred.context, ruid=cred.ruid, payload=cred.payload,
                                  ttl=cred.exp - cred.iat, cluster=cred.cluster, version=cred.ver,
                                  identity=cred.identity, now=cred.iat)
        assert again.encode() == token


def test_package_credential_with_identity_is_accepted(ctld):
    keyring = Keyring.from_key_bytes(KEY)
    token = create_credential(keyring, uid=0, gid=0, ruid=0, use_client_ids=True,
                              cluster=ctld.cluster_name,
                              payload=body_hash_payload(b"", REQUEST_PING))
    assert reply_rc(send_rpc(ctld.port, pack_frame(REQUEST_PING, b"", credential=token))) == 0
    forged = create_credential(Keyring.from_key_bytes(os.urandom(64)), uid=0, gid=0, ruid=0,
                               use_client_ids=True, payload=body_hash_payload(b"", REQUEST_PING))
    assert reply_rc(send_rpc(ctld.port, pack_frame(REQUEST_PING, b"", credential=forged))) == 1007
