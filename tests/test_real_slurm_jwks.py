"""slurm.jwks against a real slurmctld 26.05: two keys, kids, the default and a
non-default key, an unknown kid, and a rotation by `slurmauth-fast jwks rotate` +
`scontrol reconfigure` while real and package clients keep pinging."""
from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import threading
import time

import pytest

from real_slurm import CaptureProxy, SlurmCluster, reply_rc, send_rpc
from slurmauth_fast import errors as E
from slurmauth_fast.bodyhash import body_hash_payload
from slurmauth_fast.keys import Keyring
from slurmauth_fast.rpc import REQUEST_PING, pack_frame, verify_rpc
from slurmauth_fast.tokens import Verifier, create_credential

pytestmark = pytest.mark.real_slurm

K_DEFAULT = os.urandom(64)
K_OTHER = os.urandom(64)


def jwk(kid, key, default=False):
    d = {"alg": "HS256", "kty": "oct", "kid": kid,
         "k": base64.urlsafe_b64encode(key).rstrip(b"=").decode()}
    if default:
        d["use"] = "default"
    return d


JWKS = {"keys": [jwk("other", K_OTHER), jwk("main", K_DEFAULT, default=True)]}


@pytest.fixture(scope="module")
def ctld():
    cluster = SlurmCluster(jwks=JWKS).start()
    yield cluster
    cluster.cleanup()


def ping_frame(keyring):
    token = create_credential(keyring, uid=0, gid=0, ruid=0,
                              payload=body_hash_payload(b"", REQUEST_PING))
    return pack_frame(REQUEST_PING, b"", credential=token)


def test_real_clients_sign_with_the_default_kid(ctld):
    with CaptureProxy(ctld.port) as proxy:
        ctld.run("scontrol", "ping", env=ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port))))
        frame = proxy.requests[0]
    cred = verify_rpc(frame, Verifier(Keyring.from_jwks(json.dumps(JWKS)))).credential
    assert cred.kid == "main"
    # a key set without "main" cannot verify it
    with pytest.raises(E.KeyIdError):
        verify_rpc(frame, Verifier(Keyring.from_jwks(json.dumps({"keys": [jwk("other", K_OTHER)]}))))


@pytest.mark.parametrize("kid,key,accepted", [("main", K_DEFAULT, True), ("other", K_OTHER, True),
                                              ("unknown", K_DEFAULT, False),
                                              ("other", K_DEFAULT, False)])
def test_package_credentials_by_kid(ctld, kid, key, accepted):
    """Signed with the default key and with a non-default one: accepted; an unknown kid,
    or a known kid over the wrong key: rc 1007. The package decides the same."""
    signer = Keyring.from_jwks(json.dumps({"keys": [jwk(kid, key, default=True)]}))
    frame = ping_frame(signer)
    assert reply_rc(send_rpc(ctld.port, frame)) == (0 if accepted else 1007)
    verifier = Verifier(Keyring.from_jwks(json.dumps(JWKS)))
    if accepted:
        assert verify_rpc(frame, verifier).credential.kid == kid
    else:
        with pytest.raises((E.KeyIdError, E.SignatureError)):
            verify_rpc(frame, verifier)


def test_rotation_while_clients_keep_pinging(ctld):
    """`slurmauth-fast jwks rotate` writes a new default key beside the old one; after
    `scontrol reconfigure` slurmctld signs with it. Real scontrol pings and package pings
    run all along (the package client reloads its keys once slurmctld has them): none fails."""
    keyring = Keyring.load(conf_dir=str(ctld.etc))
    assert keyring.default_key().kid == "main"
    failures, counts = [], {"real": 0, "package": 0}
    stop = threading.Event()

    def package_pinger():
        while not stop.is_set():
            reply = send_rpc(ctld.port, ping_frame(keyring))
            if reply_rc(reply) != 0:
                failures.append(("package", reply))
            counts["package"] += 1

    def real_pinger():
        while not stop.is_set():
            r = ctld.run("scontrol", "ping", check=False)
            if r.returncode != 0 or " is UP" not in r.stdout:
                failures.append(("real", r.stdout + r.stderr))
            counts["real"] += 1

    threads = [threading.Thread(target=package_pinger), threading.Thread(target=real_pinger)]
    for t in threads:
        t.start()
    try:
        time.sleep(0.5)
        r = subprocess.run([sys.executable, "-m", "slurmauth_fast.cli", "jwks", "rotate",
                            "--file", str(ctld.jwks_path), "--kid", "rotated"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        ctld.reconfigure()
        keyring.reload()
        assert keyring.default_key().kid == "rotated"
        before = dict(counts)
        time.sleep(1.0)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    assert not failures, failures[:3]
    assert counts["real"] > before["real"] and counts["package"] > before["package"]
    # slurmctld now signs with the new default: a real client's credential names it
    with CaptureProxy(ctld.port) as proxy:
        ctld.run("scontrol", "ping", env=ctld.env(SLURM_CONF=str(ctld.client_conf(proxy.port))))
        frame = proxy.requests[0]
    assert verify_rpc(frame, Verifier(keyring)).credential.kid == "rotated"
    # and a package credential over the old default key still passes (it stays for verification)
    old = Keyring.from_jwks(json.dumps({"keys": [jwk("main", K_DEFAULT, default=True)]}))
    assert reply_rc(send_rpc(ctld.port, ping_frame(old))) == 0
