"""pytest-benchmark: RPC frame parse/pack and the body hashes (K12, SHA3-256),
with pycryptodome's K12 and hashlib's SHA3 beside ours on the same input.

Run: python -m pytest benchmarks/bench_wire.py --benchmark-only
(MB/s = size / mean; the 1 MiB cases are the throughput figures.)
"""
import hashlib

import pytest
from Crypto.Hash import KangarooTwelve as PyK12

from slurmauth_fast import keys, tokens
from slurmauth_fast.bodyhash import body_hash_payload, check_body_hash, k12, sha3_256
from slurmauth_fast.rpc import Forward, pack_frame, parse_frame, verify_rpc

TOKEN = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "x" * 300 + "." + "s" * 43
PING = pack_frame(1008, b"", credential=TOKEN, orig_addr=("10.0.0.1", 6817))
BIG_BODY = bytes(range(256)) * 4096            # 1 MiB
MID_BODY = bytes(range(256)) * 16              # 4 KiB, a typical job submission


def test_parse_ping_frame(benchmark):
    f = benchmark(parse_frame, PING)
    assert f.msg_type == 1008


def test_parse_forwarded_frame_4k_body(benchmark):
    data = pack_frame(4001, MID_BODY, credential=TOKEN, forward=Forward(4, "node[1-4]", 100, 50, 2))
    assert benchmark(parse_frame, data).body_length == len(MID_BODY)


def test_pack_ping_frame(benchmark):
    assert benchmark(pack_frame, 1008, b"", credential=TOKEN) == pack_frame(1008, b"", credential=TOKEN)


def test_check_body_hash_4k(benchmark):
    p = body_hash_payload(MID_BODY, 4001)
    benchmark(check_body_hash, p, MID_BODY, 4001)


@pytest.mark.parametrize("impl", ["slurmauth_fast", "pycryptodome"])
def test_k12_1mib(benchmark, impl):
    fn = (lambda: k12(BIG_BODY, b"\x0f\xa1")) if impl == "slurmauth_fast" else \
         (lambda: PyK12.new(data=BIG_BODY, custom=b"\x0f\xa1").read(32))
    assert benchmark(fn) == k12(BIG_BODY, b"\x0f\xa1")


@pytest.mark.parametrize("impl", ["slurmauth_fast", "hashlib"])
def test_sha3_256_1mib(benchmark, impl):
    fn = (lambda: sha3_256(BIG_BODY)) if impl == "slurmauth_fast" else \
         (lambda: hashlib.sha3_256(BIG_BODY).digest())
    assert benchmark(fn) == hashlib.sha3_256(BIG_BODY).digest()


def test_verify_rpc_ping(benchmark):
    """Parse + auth/slurm verification (tokens.Verifier) + K12 body hash, per frame."""
    keyring = keys.Keyring.from_key_bytes(bytes(range(32)))
    body = MID_BODY
    token = tokens.create_credential(keyring, uid=1000, gid=1000, host="login1", ttl=3600,
                                     payload=body_hash_payload(body, 4001))
    data = pack_frame(4001, body, credential=token)
    verifier = tokens.Verifier(keyring)
    assert benchmark(verify_rpc, data, verifier).credential.uid == 1000
