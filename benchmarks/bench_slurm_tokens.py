"""pytest-benchmark: auth/slurm credentials (verify single, verify batch per
token, create) beside PyJWT's jwt.decode/encode on the very same token.

Run: python -m pytest benchmarks/bench_slurm_tokens.py --benchmark-only
(short: each case is capped with --benchmark-max-time defaults of ~1 s)
"""
import base64
import json

import jwt as pyjwt
import pytest

from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

KEY = bytes(range(32))
JWKS = json.dumps({"keys": [{"kid": "key1", "kty": "oct", "alg": "HS256", "use": "default",
                             "k": base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()}]})
BATCH = 1000


@pytest.fixture(scope="module")
def ring():
    return Keyring.from_jwks(JWKS)


@pytest.fixture(scope="module")
def token(ring):
    # A typical RPC credential: ~360 bytes with cluster and a K12 body-hash payload.
    return create_credential(ring, uid=1000, gid=1000, host="login01", cluster="cluster1",
                             payload=b"\x02" + bytes(range(32)), ttl=10 ** 9)


@pytest.fixture(scope="module")
def verifier(ring):
    return Verifier(ring, verifier_uid=0)


def test_verify_single(benchmark, verifier, token):
    benchmark.extra_info["token_bytes"] = len(token)
    assert benchmark(verifier.verify, token).uid == 1000


def test_verify_batch_per_token(benchmark, verifier, token):
    tokens = [token] * BATCH
    benchmark.extra_info["tokens_per_round"] = BATCH  # divide the time by this
    results = benchmark(verifier.verify_batch, tokens)
    assert len(results) == BATCH and results[-1].uid == 1000


def test_create(benchmark, ring):
    benchmark(create_credential, ring, uid=1000, gid=1000, host="login01", cluster="cluster1",
              payload=b"\x02" + bytes(range(32)))


def test_pyjwt_decode(benchmark, token):
    out = benchmark(pyjwt.decode, token, KEY, algorithms=["HS256"])
    assert out["uid"] == 1000


def test_pyjwt_encode(benchmark, token):
    claims = pyjwt.decode(token, KEY, algorithms=["HS256"])
    benchmark(pyjwt.encode, claims, KEY, algorithm="HS256", headers={"kid": "key1"})
