"""pytest-benchmark: HS256 verify and sign, slurmauth_fast beside PyJWT on the same token.

Run: python -m pytest benchmarks/bench_jws.py --benchmark-only
"""
import os

import jwt as pyjwt
import pytest

from slurmauth_fast import HS256Key

KEY = os.urandom(32)
CLAIMS = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
          "cluster": "cluster1", "uid": 1000, "gid": 1000, "host": "login01",
          "payload": "AjWm1ZyoVu3WwVSR3lZd1bDx9y0cWS1e1yE0bFRhTjCk"}


@pytest.fixture(scope="module")
def key():
    return HS256Key(KEY)


@pytest.fixture(scope="module")
def token(key):
    return key.sign(CLAIMS)


def test_verify_slurmauth_fast(benchmark, key, token):
    assert benchmark(key.verify, token).claims == CLAIMS


def test_verify_raw_slurmauth_fast(benchmark, key, token):
    benchmark(key.verify_raw, token)


def test_verify_pyjwt(benchmark, token):
    opts = {"verify_exp": False, "verify_iat": False}
    assert benchmark(pyjwt.decode, token, KEY, algorithms=["HS256"], options=opts) == CLAIMS


def test_sign_slurmauth_fast(benchmark, key):
    benchmark(key.sign, CLAIMS)


def test_sign_pyjwt(benchmark):
    benchmark(pyjwt.encode, CLAIMS, KEY, algorithm="HS256")
