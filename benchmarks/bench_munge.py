"""pytest-benchmark: MUNGE encode/decode through a real private munged, beside
auth/slurm's verification (tokens.Verifier, and the bare HS256Key.verify) of a
credential carrying the same body-hash payload.

Every MUNGE operation is a round trip over munged's unix socket (munged does
the crypto and the replay cache), so it is bounded by the daemon, not by this
binding. A credential decodes only once (replay detection), so the decode
benchmark encodes a fresh credential in the untimed setup of every round.

Run: python -m pytest benchmarks/bench_munge.py --benchmark-only
"""
import base64
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), os.pardir, "tests"))

from munged import MungedDaemon, skip_unless_munge  # noqa: E402

from slurmauth_fast import HS256Key  # noqa: E402
from slurmauth_fast.keys import Keyring  # noqa: E402
from slurmauth_fast.tokens import Verifier, create_credential  # noqa: E402
from slurmauth_fast.munge import MungeContext, pack_munge_rpc, verify_munge_rpc  # noqa: E402

#: A Slurm body-hash payload: type byte 2 (K12) then a 32-byte digest (spec section 3).
PAYLOAD = b"\x02" + os.urandom(32)
ROUNDS = 2000


@pytest.fixture(scope="module")
def ctx():
    skip_unless_munge()
    with MungedDaemon(num_threads=4) as daemon:
        yield MungeContext(socket=daemon.socket)


def test_munge_encode(benchmark, ctx):
    assert benchmark(ctx.encode, PAYLOAD).startswith("MUNGE:")


def test_munge_decode(benchmark, ctx):
    got = benchmark.pedantic(ctx.decode, setup=lambda: ((ctx.encode(PAYLOAD),), {}),
                             rounds=ROUNDS, iterations=1)
    assert got.payload == PAYLOAD


def test_verify_munge_rpc(benchmark, ctx):
    """A whole auth/munge RPC: parse the frame, decode through munged, check the K12 body hash."""
    body = os.urandom(256)
    v = benchmark.pedantic(verify_munge_rpc, setup=lambda: ((pack_munge_rpc(2003, body, context=ctx),),
                                                            {"context": ctx}),
                           rounds=ROUNDS, iterations=1)
    assert bytes(v.frame.body) == body


def test_munge_decode_4_threads(benchmark, ctx):
    """Four threads decoding at once (each call has its own munge context and
    releases the GIL): the time of one round is that of 4 x 50 decodes."""
    batches = []

    def setup():
        batches[:] = [[ctx.encode(PAYLOAD) for _ in range(50)] for _ in range(4)]
        return (), {}

    def run():
        def worker(creds):
            for c in creds:
                ctx.decode(c)
        threads = [threading.Thread(target=worker, args=(b,)) for b in batches]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    benchmark.pedantic(run, setup=setup, rounds=20, iterations=1)


def test_hs256_verify_comparable_token(benchmark):
    """The auth/slurm counterpart (in-process HMAC, no daemon): an HS256 token
    with the same claims Slurm puts in an RPC credential and the same payload."""
    key = HS256Key(os.urandom(32))
    claims = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295,
              "context": "auth", "uid": 1000, "gid": 1000, "host": "login01",
              "payload": base64.b64encode(PAYLOAD).decode()}
    token = key.sign(claims)
    assert benchmark(key.verify, token).claims == claims


def test_auth_slurm_verify_same_payload(benchmark):
    """auth/slurm (plugin 103) verification of an RPC credential with the same payload."""
    keyring = Keyring.from_key_bytes(os.urandom(32))
    token = create_credential(keyring, uid=1000, gid=1000, host="login01", payload=PAYLOAD, ttl=3600)
    verifier = Verifier(keyring)
    assert benchmark(verifier.verify, token).payload == PAYLOAD
