"""pytest-benchmark: auth/jwt verification as slurmctld does it (signature, exp/iat,
user claim, local user lookup), beside PyJWT's decode of the same token.

Run: python -m pytest benchmarks/bench_jwt.py --benchmark-only
"""
import json
import os
import time

import jwt as pyjwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from slurmauth_fast import HS256Key
from slurmauth_fast import jwt as slurm_jwt

KEY = os.urandom(32)
NOW = int(time.time())


@pytest.fixture(scope="module")
def hs():
    key = HS256Key(KEY)
    return slurm_jwt.JWTVerifier(hs256_key=key), slurm_jwt.create_token(key, "root", caller_uid=0, now=NOW)


@pytest.fixture(scope="module")
def rs():
    priv = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    n = priv.public_key().public_numbers().n
    jwk = {"kty": "RSA", "alg": "RS256", "kid": "k1", "e": "AQAB",
           "n": pyjwt.utils.base64url_encode(n.to_bytes(256, "big")).decode()}
    verifier = slurm_jwt.JWTVerifier(jwks=slurm_jwt.RS256KeySet.from_jwks(json.dumps({"keys": [jwk]})))
    token = pyjwt.encode({"iat": NOW, "exp": NOW + 1800, "sun": "root"}, priv, algorithm="RS256",
                         headers={"kid": "k1"})
    return verifier, token, priv.public_key()


def test_mint_slurmauth_fast(benchmark):
    key = HS256Key(KEY)
    benchmark(slurm_jwt.create_token, key, "root", caller_uid=0)


def test_verify_hs256_slurmauth_fast(benchmark, hs):
    verifier, token = hs
    assert benchmark(verifier.verify, token, now=NOW).uid == 0


def test_verify_hs256_pyjwt(benchmark, hs):
    _, token = hs
    benchmark(pyjwt.decode, token, KEY, algorithms=["HS256"])


def test_verify_rs256_slurmauth_fast(benchmark, rs):
    verifier, token, _ = rs
    assert benchmark(verifier.verify, token, now=NOW).kid == "k1"


def test_verify_rs256_pyjwt(benchmark, rs):
    _, token, pub = rs
    benchmark(pyjwt.decode, token, pub, algorithms=["RS256"])
