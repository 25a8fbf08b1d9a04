"""KangarooTwelve, SHA3-256 and the body-hash payload: RFC 9861 vectors,
pycryptodome and hashlib as oracles, every check failure class."""
import hashlib

import pytest
from Crypto.Hash import KangarooTwelve as PyK12
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from slurmauth_fast import bodyhash
from slurmauth_fast import errors as E
from slurmauth_fast.bodyhash import (
    HASH_K12, HASH_NONE, HASH_SHA3, body_hash_payload, k12, sha3_256,
)


def check_body_hash(*args, **kw):
    """The check with both hash plugins loaded (HashPlugin=hash/k12,hash/sha3): these tests
    are about the constructions; test_sha3_is_refused_unless_loaded is about the policy."""
    kw.setdefault("hash_plugins", ("k12", "sha3"))
    return bodyhash.check_body_hash(*args, **kw)


def test_sha3_is_refused_unless_loaded():
    p = body_hash_payload(b"body", 1008, HASH_SHA3)
    with pytest.raises(E.UnknownHashTypeError):
        bodyhash.check_body_hash(p, b"body", 1008)          # Slurm's default: hash/k12 alone
    bodyhash.check_body_hash(p, b"body", 1008, hash_plugins=("hash/sha3",))   # k12 added
    bodyhash.check_body_hash(body_hash_payload(b"body", 1008), b"body", 1008, hash_plugins=())


def _input(spec):
    n = spec["len"]
    return {"empty": b"", "ptn": bytes(i % 251 for i in range(n)), "ff": b"\xff" * n}[spec["kind"]]


@pytest.mark.parametrize("v", load_vectors("k12_rfc9861.json")["vectors"],
                         ids=lambda v: f"M={v['message']['kind']}{v['message']['len']}"
                                       f"-C={v['custom']['kind']}{v['custom']['len']}-L={v['output_len']}")
def test_k12_rfc9861(v):
    out = k12(_input(v["message"]), _input(v["custom"]), v["output_len"])
    if "last" in v:
        out = out[-v["last"]:]
    assert out.hex() == v["expected"]


# Sizes around the rate (168), the chunk (8192) and several leaves.
EDGES = [0, 1, 167, 168, 169, 8190, 8191, 8192, 8193, 2 * 8192, 2 * 8192 + 1, 5 * 8192 + 77]


@pytest.mark.parametrize("n", EDGES)
@pytest.mark.parametrize("custom", [b"", b"\x03\xf0", bytes(range(200))], ids=["C0", "C2", "C200"])
def test_k12_matches_pycryptodome_at_edges(n, custom):
    m = bytes((7 * i + 3) % 256 for i in range(n))
    assert k12(m, custom) == PyK12.new(data=m, custom=custom).read(32)


@given(st.binary(max_size=40000), st.binary(max_size=300), st.integers(0, 400))
def test_k12_matches_pycryptodome(m, custom, length):
    assert k12(m, custom, length) == PyK12.new(data=m, custom=custom).read(length)


@pytest.mark.parametrize("n", [0, 1, 135, 136, 137, 271, 272, 10000])
def test_sha3_256_at_edges(n):
    m = bytes(i % 256 for i in range(n))
    assert sha3_256(m) == hashlib.sha3_256(m).digest()
    assert sha3_256(m, b"\x03\xf0") == hashlib.sha3_256(m + b"\x03\xf0").digest()


@given(st.binary(max_size=5000), st.binary(max_size=300))
def test_sha3_256_matches_hashlib(a, b):
    assert sha3_256(a, b) == hashlib.sha3_256(a + b).digest()


@given(st.binary(max_size=20000), st.integers(0, 0xFFFF))
def test_payload_forms(body, msg_type):
    mt = msg_type.to_bytes(2, "big")
    assert body_hash_payload(body, msg_type) == b"\x02" + PyK12.new(data=body, custom=mt).read(32)
    assert body_hash_payload(body, msg_type, HASH_SHA3) == b"\x04" + hashlib.sha3_256(body + mt).digest()
    assert body_hash_payload(body, msg_type, HASH_NONE) == b"\x01" + mt
    for t in (HASH_K12, HASH_SHA3, HASH_NONE):
        check_body_hash(body_hash_payload(body, msg_type, t), body, msg_type)


BODY = b"\x00\x00\x00\x00 a packed body"
PING = 1008


@pytest.mark.parametrize("hash_type", [HASH_K12, HASH_SHA3])
def test_altered_body_or_type_is_rejected(hash_type):
    p = body_hash_payload(BODY, PING, hash_type)
    check_body_hash(p, BODY, PING)
    with pytest.raises(E.BodyHashMismatchError):
        check_body_hash(p, BODY + b"x", PING)
    with pytest.raises(E.BodyHashMismatchError):
        check_body_hash(p, BODY, PING + 1)
    flipped = bytearray(p)
    flipped[-1] ^= 1
    with pytest.raises(E.BodyHashMismatchError):
        check_body_hash(bytes(flipped), BODY, PING)


def test_the_hash_type_is_bound():
    # A K12 digest relabelled as SHA3 does not verify.
    p = body_hash_payload(BODY, PING, HASH_K12)
    with pytest.raises(E.BodyHashMismatchError):
        check_body_hash(b"\x04" + p[1:], BODY, PING)


def test_null_payload_policy():
    check_body_hash(None, BODY, PING)
    check_body_hash(b"", BODY, PING)          # empty data is "no payload", as in Slurm
    with pytest.raises(E.MissingBodyHashError):
        check_body_hash(None, BODY, PING, block_null_hash=True)
    with pytest.raises(E.MissingBodyHashError):
        check_body_hash(b"", BODY, PING, block_null_hash=True)


def test_none_form_policy_and_msg_type():
    p = body_hash_payload(BODY, PING, HASH_NONE)
    assert p == b"\x01\x03\xf0"
    check_body_hash(p, b"any body at all", PING)
    with pytest.raises(E.BlockedNoneHashError):
        check_body_hash(p, BODY, PING, block_zero_hash=True)
    with pytest.raises(E.BodyHashMsgTypeError):
        check_body_hash(p, BODY, 1009)
    # block_zero_hash does not affect real digests
    check_body_hash(body_hash_payload(BODY, PING), BODY, PING, block_zero_hash=True)


@pytest.mark.parametrize("payload", [b"\x01", b"\x01\x03", b"\x01\x03\xf0\x00",
                                     b"\x02" + bytes(31), b"\x02" + bytes(33), b"\x04", b"\x04" + bytes(64)])
def test_wrong_length_payloads(payload):
    with pytest.raises(E.BodyHashLengthError):
        check_body_hash(payload, BODY, PING)


@pytest.mark.parametrize("type_byte", [0, 3, 5, 0x80, 0xFF])
def test_unknown_hash_types(type_byte):
    with pytest.raises(E.UnknownHashTypeError):
        check_body_hash(bytes([type_byte]) + bytes(32), BODY, PING)
    with pytest.raises(E.UnknownHashTypeError):
        body_hash_payload(BODY, PING, type_byte)


def test_failures_are_credential_errors():
    with pytest.raises(E.CredentialError) as ei:
        check_body_hash(b"\x02" + bytes(32), BODY, PING)
    assert ei.value.slurm_errno == E.ESLURM_AUTH_CRED_INVALID


@pytest.mark.parametrize("bad", [-1, 0x10000, "1008", None])
def test_msg_type_must_be_uint16(bad):
    with pytest.raises(E.BadArgumentError):
        body_hash_payload(BODY, bad)
