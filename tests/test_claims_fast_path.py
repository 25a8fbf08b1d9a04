"""The claims' fast path (csrc/slurmcred.c, claims_fast: AVX-512BW, taken for
claims as libjwt writes them) against the general walk: every input, whether
the fast path reads it or gives it up, must give the same status and
byte-for-byte the same scratch region (sc_result, host/cluster/payload, the
raw objects) under SC_SCAN_AVX512 as under the portable scanner, with and
without use_client_ids. The cases are the fast path's own edges: each
integer claim given values at and past its limits, leading zeros, signs,
fractions and other types; each string claim given escapes, non-ASCII and
control bytes; the objects (id, sbcast, net) valid, nested and malformed;
the object's own structure (whitespace, a repeated or unknown name, a
missing or extra comma, bytes after the closing brace). Skips where the
AVX-512BW scanner is not available."""
import json
from typing import Dict, List, Tuple

import pytest
from hypothesis import given, settings, strategies as st

from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

RING = Keyring.from_key_bytes(b"f" * 32)
KEY = RING.default_key().key
NOW = 1_700_000_000
HEADER = b'{"alg":"HS256","typ":"JWT"}'
VERIFIERS = [Verifier(RING, verifier_uid=500), Verifier(RING, verifier_uid=500, use_client_ids=True)]
BASE = {"cluster": "c", "context": "auth", "exp": NOW + 60, "gid": 100, "host": "node1",
        "iat": NOW, "payload": "AQID", "ruid": 4294967295, "uid": 1000, "ver": 0x2D00}
INT_CLAIMS = ["iat", "exp", "ver", "ruid", "uid", "gid"]
STR_CLAIMS = ["context", "cluster", "host", "payload"]
OBJ_CLAIMS = ["id", "sbcast", "net"]

HAVE_AVX512 = lib.sc_scan_select(lib.SC_SCAN_AVX512) == lib.SC_SCAN_AVX512
lib.sc_scan_select(lib.SC_SCAN_AUTO)
pytestmark = pytest.mark.skipif(not HAVE_AVX512, reason="no AVX-512BW scanner on this CPU")

INT_VALUES = [b"0", b"-0", b"7", b"-7", b"01", b"-01", b"00", b"-", b"--1", b"+1", b"1.0", b"1.",
              b"1e3", b"1E3", b"1e", b"65535", b"65536", b"4294967295", b"4294967296",
              b"-4294967295", b"9" * 15, b"9" * 16, b"9" * 17, b"9" * 18, b"1" + b"0" * 18,
              b"9223372036854775807", b"9223372036854775808", b"-9223372036854775808",
              b"9" * 40, b'"1"', b"true", b"null", b"{}", b"[1]", b" 1", b"1 ", b"1x", b""]
STR_VALUES = [b'""', b'"a"', b'"a b"', b'"auth"', b'"a\\"b"', b'"\\u00e9"', b'"\\n"', b'"\xc3\xa9"',
              b'"\x01"', b'"\x7f"', b'"\xff"', b'"a', b'"a":"b"', b'"}"', b'","', b"1", b"{}", b"null",
              b'"' + b"x" * 70 + b'"']
OBJ_VALUES = [b"{}", b'{"a":1}', b'{"a":"x\\"y"}', b'{"a":{"b":[1,2,{"c":"}"}]}}', b'{"a":"}"}',
              b"{", b'{"a":}', b'{"a":1,}', b"[]", b"1", b'"x"', b'{"a":1}}', b'{ "a" : 1 }']


def _claims(**values: bytes) -> bytes:
    """BASE as libjwt writes it (sorted, compact), with some values replaced by raw JSON text."""
    members = {k: json.dumps(v).encode() for k, v in BASE.items()}
    members.update(values)
    return b"{" + b",".join(b'"' + k.encode() + b'":' + v for k, v in sorted(members.items())) + b"}"


def _verify(verifier: Verifier, token: bytes) -> Tuple[int, bytes]:
    cap = lib.sc_scratch_need(len(token))
    buf = ffi.new("uint8_t[]", cap)
    rc = lib.sc_verify(RING.snapshot().keyset, verifier.c_policy, token, len(token), NOW, buf, cap)
    return rc, ffi.buffer(buf, cap)[:]


def _same(claims: bytes) -> List[int]:
    """sc_verify's status per verifier, the same under the fast path and the portable walk."""
    token = KEY.sign_raw(HEADER, claims).encode()
    statuses = []
    for verifier in VERIFIERS:
        got: Dict[int, Tuple[int, bytes]] = {}
        try:
            for impl in (lib.SC_SCAN_PORTABLE, lib.SC_SCAN_AVX512):
                assert lib.sc_scan_select(impl) == impl
                got[impl] = _verify(verifier, token)
        finally:
            lib.sc_scan_select(lib.SC_SCAN_AUTO)
        assert got[lib.SC_SCAN_AVX512] == got[lib.SC_SCAN_PORTABLE], (claims, verifier.use_client_ids)
        statuses.append(got[lib.SC_SCAN_PORTABLE][0])
    return statuses


def test_canonical_claims_verify():
    assert _same(_claims()) == [0, 0]


@pytest.mark.parametrize("name", INT_CLAIMS)
def test_integer_claim_values(name):
    seen = set()
    for value in INT_VALUES:
        for claims in (_claims(**{name: value}), _claims(**{name: value}) + b" "):
            seen.update(_same(claims))
    assert 0 in seen and len(seen) > 2      # some accepted, some refused in more than one way


@pytest.mark.parametrize("name", STR_CLAIMS)
def test_string_claim_values(name):
    seen = set()
    for value in STR_VALUES:
        seen.update(_same(_claims(**{name: value})))
    assert lib.SC_E_UTF8 in seen and lib.SC_E_STR_TYPE in seen


@pytest.mark.parametrize("name", OBJ_CLAIMS)
def test_object_claim_values(name):
    for value in OBJ_VALUES:
        _same(_claims(**{name: value}))
        _same(_claims(**{name: value, "uid": b"01"}))   # a give-up after the object


def test_refused_negative_zero_for_unsigned_claims():
    # "-0" is an int64 0 for iat/exp but out of range for the uint32 claims (cl_value)
    assert _same(_claims(iat=b"-0")) == [0, 0]
    assert _same(_claims(uid=b"-0")) == [lib.SC_E_INT_RANGE] * 2


def test_object_structure():
    claims = _claims()
    cases = [
        claims + b"}", claims + b" ", b" " + claims, claims[:-1] + b" }", b"{ " + claims[1:],
        claims.replace(b",", b", ", 1), claims.replace(b":", b" :", 1), claims.replace(b",", b"", 1),
        claims[:-1] + b",}", claims[:-1] + b',"uid":1}', claims[:-1] + b',"zz":1}',
        claims[:-1] + b',"cluster":"d"}', b'{"zz":1,' + claims[1:], b"{}", b"{", b"}",
        claims[:-1], claims + b"\n", claims.replace(b'"', b"'", 2), claims.replace(b"{", b"[", 1),
        claims[:-1] + b',"id":{}}', claims[:-1] + b"]",
    ]
    for c in cases:
        _same(c)


def test_claims_around_the_64_byte_marks():
    # strings and digit runs ending at every offset around the marks' word boundaries
    for pad in range(0, 140):
        _same(_claims(cluster=json.dumps("x" * pad).encode()))
        _same(_claims(cluster=json.dumps("x" * pad).encode(), uid=b"01"))


def test_claims_past_the_fast_path_limit_take_the_general_walk():
    for pad in (900, 1000, 1100):
        assert _same(_claims(payload=json.dumps("A" * pad).encode())) == [0, 0]


json_value = st.one_of(
    st.integers(-(2 ** 66), 2 ** 66).map(lambda v: b"%d" % v),
    st.text(max_size=12).map(lambda s: json.dumps(s, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.text(max_size=12).map(lambda s: json.dumps(s).encode()),
    st.sampled_from(OBJ_VALUES + INT_VALUES + STR_VALUES))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(INT_CLAIMS + STR_CLAIMS + OBJ_CLAIMS + ["zz"]), json_value),
       st.integers(0, 400), st.binary(max_size=2))
def test_random_claims_same_on_both_paths(values, at, insert):
    claims = _claims(**values)
    at %= len(claims) + 1
    _same(claims)
    _same(claims[:at] + insert + claims[at + len(insert):])   # a byte or two replaced
