"""The package's SACK client against a real sackd 26.05, and the package verifying what
sackd mints."""
from __future__ import annotations

import os

import pytest

from real_slurm import NOBODY_GID, NOBODY_UID, Sackd, SlurmCluster
from slurmauth_fast import errors as E
from slurmauth_fast.keys import Keyring
from slurmauth_fast.sack import sack_create, sack_verify
from slurmauth_fast.tokens import Verifier, create_credential

pytestmark = pytest.mark.real_slurm

KEY = os.urandom(64)
SLURM_AUTH_UID_ANY = 0xFFFFFFFF


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(key=KEY).start()
    yield cluster
    cluster.cleanup()


@pytest.fixture(scope="module")
def sackd(ctld):
    daemon = Sackd(ctld).start()
    yield daemon
    daemon.stop()


def test_create_from_real_sackd_verifies_with_the_package(sackd):
    token = sack_create(0, b"body hash bytes", socket_path=str(sackd.socket))
    cred = Verifier(Keyring.from_key_bytes(KEY)).verify(token, context="sack")
    assert (cred.uid, cred.gid) == (os.getuid(), os.getgid())
    assert cred.context == "sack" and cred.ruid == 0 and cred.payload == b"body hash bytes"
    assert cred.cluster == sackd.cluster.cluster_name
    with pytest.raises(E.SignatureError):
        Verifier(Keyring.from_key_bytes(os.urandom(64))).verify(token, context="sack")


def test_real_sackd_verifies_package_credentials(sackd):
    keyring = Keyring.from_key_bytes(KEY)
    good = create_credential(keyring, uid=os.getuid(), gid=os.getgid(), context="sack",
                             ruid=SLURM_AUTH_UID_ANY, payload=b"data")
    assert sack_verify(good, socket_path=str(sackd.socket)) is None      # rc 0
    forged = create_credential(Keyring.from_key_bytes(os.urandom(64)), uid=0, gid=0,
                               context="sack", ruid=SLURM_AUTH_UID_ANY)
    with pytest.raises(E.SackVerifyRefusedError):
        sack_verify(forged, socket_path=str(sackd.socket))


def test_real_client_through_real_sackd_as_nobody(ctld, sackd):
    env = ctld.env(SLURM_SACK_SOCKET=str(sackd.socket))
    r = ctld.run("scontrol", "ping", env=env, user=(NOBODY_UID, NOBODY_GID))
    assert " is UP" in r.stdout
