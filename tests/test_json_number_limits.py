"""Numbers exactly as jansson (so libjwt, so Slurm) takes them, in the C claims
scanner (portable and SSE2 alike) and in the strict Python JSON reader.

jansson reads an integer literal into json_int_t (int64) and refuses one
beyond it ("too big integer" / "too big negative integer"); "-0" is the
integer 0; a fraction or exponent makes a real, read with strtod(), refused
only when it overflows a double ("real number overflow": 1e400), not when it
underflows (1e-400 is 0.0). Leading zeros are a syntax error. libjwt's
jwt_decode is the oracle where it is installed.

Also here: the auth/slurm payload claim "" (Slurm's xbase64_decode() fails on
an empty string, so slurmctld refuses the credential) and alg "hs256" (refused,
as an AlgorithmError on every verification path).
"""
import json

import pytest
from hypothesis import given, settings, strategies as st

import libjwt_oracle
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.errors import AlgorithmError, BadArgumentError, ClaimsError, HeaderError, PayloadError
from slurmauth_fast.jsonutil import dumps_compact
from slurmauth_fast.jsonutil import loads_object
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

SECRET = b"n" * 32
RING = Keyring.from_key_bytes(SECRET)
KEY = RING.default_key().key
NOW = 1_700_000_000
VERIFIER = Verifier(RING, verifier_uid=500)
HEADER = b'{"alg":"HS256","typ":"JWT"}'
BASE = {"iat": NOW, "exp": NOW + 60, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
        "cluster": "c", "uid": 1000, "gid": 100, "host": "node1", "payload": "AQID"}
PREFIX = json.dumps(BASE, separators=(",", ":")).encode()[:-1]

HAVE_SSE2 = lib.sc_scan_select(lib.SC_SCAN_SSE2) == lib.SC_SCAN_SSE2
lib.sc_scan_select(lib.SC_SCAN_AUTO)
IMPLS = [lib.SC_SCAN_PORTABLE] + ([lib.SC_SCAN_SSE2] if HAVE_SSE2 else []) + (
    [lib.SC_SCAN_AVX512] if lib.sc_scan_select(lib.SC_SCAN_AVX512) == lib.SC_SCAN_AVX512 else [])
lib.sc_scan_select(lib.SC_SCAN_AUTO)
LIBJWT = libjwt_oracle.load()

# 2^1024 - 2^970: from here on strtod() rounds to infinity (ERANGE)
DBL_BOUND = str(2 ** 1024 - 2 ** 970)

# (number text, whether jansson accepts it)
CASES = [
    (b"0", True), (b"-0", True), (b"7", True),
    (b"9223372036854775807", True), (b"9223372036854775808", False),
    (b"-9223372036854775808", True), (b"-9223372036854775809", False),
    (b"18446744073709551616", False), (b"99999999999999999999", False),
    (b"-99999999999999999999", False), (b"100000000000000000000", False),
    (b"1" + b"0" * 5000, False), (b"-" + b"9" * 5000, False),
    (b"1" * 19, True), (b"1" * 20, False), (b"-" + b"1" * 19, True), (b"-" + b"1" * 20, False),
    (b"01", False), (b"-01", False), (b"00", False), (b"-", False), (b"+1", False),
    (b"1.", False), (b".5", False), (b"1e", False), (b"1e+", False),
    (b"-0.0", True), (b"0.5", True), (b"1e308", True), (b"1E+308", True),
    (b"1e309", False), (b"-1e309", False), (b"1e400", False), (b"-1e400", False),
    (b"1e-400", True), (b"-1e-400", True), (b"2.5e-324", True),
    (b"1e-99999999999999999999", True), (b"1e99999999999999999999", False),
    (b"0e99999999999999999999", True), (b"0.000e400", True), (b"-0e400", True),
    (b"1.7976931348623157e308", True), (b"1.7976931348623158e308", True),
    (b"1.7976931348623159e308", False), (b"17976931348623159e292", False),
    (b"0.0000017976931348623159e314", False), (b"0.0000017976931348623157e314", True),
    (DBL_BOUND.encode() + b".0", False), (DBL_BOUND.encode() + b"e0", False),
    (b"0." + DBL_BOUND.encode() + b"e309", False),
    (DBL_BOUND[:-1].encode() + b"1.9", True), (DBL_BOUND[:-1].encode() + b"2.000001", False),
    (DBL_BOUND[:-1].encode() + b"1.99999999999999999999", True),
    (b"1" + b"0" * 400 + b".0", False), (b"1" + b"0" * 308 + b".5", True),
    (b"2" + b"0" * 308 + b".5", False),
    (b"9" * 308 + b".9", True),
    (b"0." + b"0" * 400 + b"1e400", True), (b"0." + b"0" * 400 + b"1e710", False),
    (b"1" + b"0" * 400 + b"e-400", True), (b"1" + b"0" * 400 + b"e-91", False),
    (b"1" + b"0" * 400 + b"e-92", True),
]
IDS = [c[0][:24].decode() + ("..%d" % len(c[0]) if len(c[0]) > 24 else "") for c in CASES]


def _verify_rc(token: bytes) -> int:
    cap = lib.sc_scratch_need(len(token))
    buf = ffi.new("uint8_t[]", cap)
    return lib.sc_verify(RING.snapshot().keyset, VERIFIER.c_policy, token, len(token), NOW, buf, cap)


def _all_impls(header: bytes, claims: bytes) -> int:
    """sc_verify's status on these claims, the same under every scanner."""
    token = KEY.sign_raw(header, claims).encode()
    got = []
    try:
        for impl in IMPLS:
            assert lib.sc_scan_select(impl) == impl
            got.append(_verify_rc(token))
    finally:
        lib.sc_scan_select(lib.SC_SCAN_AUTO)
    assert all(g == got[0] for g in got), (claims[:80], got)
    return got[0]


def _python_accepts(raw: bytes) -> bool:
    try:
        loads_object(raw, ClaimsError, "claims")
    except ClaimsError:
        return False
    return True


@pytest.mark.parametrize("num,accepted", CASES, ids=IDS)
def test_unknown_claim_number_as_jansson(num, accepted):
    for tail in (b"", b" " * 15, b" " * 16, b" " * 17):
        # the last member, then the end of the buffer; and the first one
        assert _all_impls(HEADER, PREFIX + b',"zz":' + num + b"}" + tail) == (0 if accepted else lib.SC_E_CLAIMS_JSON)
        assert _all_impls(HEADER, b'{"zz":' + num + b"," + PREFIX[1:] + b"}" + tail) == (
            0 if accepted else lib.SC_E_CLAIMS_JSON)
    # nested in an unknown claim, and in "id" (skipped the same way)
    assert _all_impls(HEADER, PREFIX + b',"zz":[1,{"a":' + num + b"}]}") == (0 if accepted else lib.SC_E_CLAIMS_JSON)
    assert _all_impls(HEADER, PREFIX + b',"id":{"a":' + num + b"}}") == (0 if accepted else lib.SC_E_CLAIMS_JSON)
    # in the JOSE header
    assert _all_impls(b'{"alg":"HS256","x":' + num + b',"typ":"JWT"}', PREFIX + b"}") == (
        0 if accepted else lib.SC_E_HEADER_JSON)


@pytest.mark.parametrize("num,accepted", CASES, ids=IDS)
def test_python_reader_agrees(num, accepted):
    assert _python_accepts(b'{"zz":' + num + b"}") is accepted
    assert _python_accepts(b'{"zz":[' + num + b"]}") is accepted


@pytest.mark.skipif(LIBJWT is None, reason=libjwt_oracle.MISSING)
@pytest.mark.parametrize("num,accepted", CASES, ids=IDS)
def test_libjwt_is_the_oracle(num, accepted):
    token = KEY.sign_raw(HEADER, PREFIX + b',"zz":' + num + b"}")
    rc, _ = LIBJWT.decode(token, SECRET)
    assert (rc == 0) is accepted


@pytest.mark.parametrize("num,accepted", [c for c in CASES if b"." in c[0] or b"e" in c[0].lower()])
def test_known_integer_claim_given_a_real(num, accepted):
    # a real where an integer is due: wrong type when jansson reads it, else bad JSON
    rc = _all_impls(HEADER, PREFIX.replace(b'"iat":%d' % NOW, b'"iat":' + num) + b"}")
    if num in (b"1.", b".5", b"1e", b"1e+"):
        assert rc == lib.SC_E_CLAIMS_JSON
    else:
        assert rc == (lib.SC_E_INT_TYPE if accepted else lib.SC_E_CLAIMS_JSON)


def test_known_integer_claims_beyond_int64_keep_their_range_error():
    for num in (b"9223372036854775808", b"-9223372036854775809", b"1" + b"0" * 5000):
        rc = _all_impls(HEADER, PREFIX.replace(b'"iat":%d' % NOW, b'"iat":' + num) + b"}")
        assert rc == lib.SC_E_INT_RANGE
    assert _all_impls(HEADER, PREFIX.replace(b'"iat":%d' % NOW, b'"iat":-9223372036854775808') + b"}") == 0


def test_the_5000_digit_integer_is_refused_everywhere():
    claims = PREFIX + b',"zz":' + b"1" * 5000 + b"}"
    token = KEY.sign_raw(HEADER, claims)
    with pytest.raises(ClaimsError):
        VERIFIER.verify(token, now=NOW)
    assert isinstance(VERIFIER.verify_batch([token], now=NOW)[0], ClaimsError)
    assert VERIFIER.verify_many([token], now=NOW).status[0] == lib.SC_E_CLAIMS_JSON
    assert not _python_accepts(claims)
    with pytest.raises(HeaderError):
        loads_object(b'{"a":-' + b"2" * 30 + b"}", HeaderError, "header")


@pytest.mark.parametrize("value", [2 ** 63, -(2 ** 63) - 1, 10 ** 500, [1, 2 ** 64], {"a": {"b": 2 ** 70}}])
def test_signing_refuses_what_jansson_would_refuse(value):
    with pytest.raises(BadArgumentError, match="int64"):
        dumps_compact({"zz": value})
    with pytest.raises(BadArgumentError):
        KEY.sign({"zz": value})
    # the edges and long digit strings elsewhere are fine
    assert dumps_compact({"a": [2 ** 63 - 1, -(2 ** 63)], "s": "1" * 40}) == (
        b'{"a":[9223372036854775807,-9223372036854775808],"s":"' + b"1" * 40 + b'"}')


_int_text = st.integers(-(2 ** 70), 2 ** 70).map(lambda v: str(v).encode())
_real_text = st.builds(
    lambda sign, ip, frac, exp: sign + ip + frac + exp,
    st.sampled_from([b"", b"-"]),
    st.sampled_from([b"0", b"1", b"17976931348623157", b"17976931348623159", b"9" * 40]) | _int_text.filter(
        lambda t: not t.startswith(b"-")),
    st.sampled_from([b"", b".0", b".5", b".000001", b".79769313486231580793728971405303415"]),
    st.sampled_from([b"", b"e", b"E+"]).flatmap(
        lambda e: st.just(b"") if not e else st.integers(-800, 800).map(lambda x: e + str(x).encode())),
)


@settings(max_examples=400, deadline=None)
@given(st.one_of(_int_text, _real_text))
def test_random_numbers_scanners_python_and_libjwt_agree(num):
    claims = PREFIX + b',"zz":' + num + b"}"
    rc = _all_impls(HEADER, claims)
    assert rc in (0, lib.SC_E_CLAIMS_JSON)
    assert (rc == 0) is _python_accepts(claims), num
    if LIBJWT is not None:
        got, _ = LIBJWT.decode(KEY.sign_raw(HEADER, claims), SECRET)
        assert (got == 0) is (rc == 0), num


# ---- payload "" and alg "hs256" ----------------------------------------------

def _token(header: bytes = HEADER, **claims) -> str:
    return KEY.sign_raw(header, json.dumps(dict(BASE, **claims), separators=(",", ":")).encode())


def test_empty_payload_is_refused_like_slurm():
    token = _token(payload="")
    with pytest.raises(PayloadError, match="empty"):
        VERIFIER.verify(token, now=NOW)
    got = VERIFIER.verify_batch([token, _token()], now=NOW)
    assert isinstance(got[0], PayloadError) and got[1].payload == b"\x01\x02\x03"
    assert VERIFIER.verify_many([token], now=NOW).status[0] == lib.SC_E_PAYLOAD_EMPTY
    assert _all_impls(HEADER, json.dumps(dict(BASE, payload="")).encode()) == lib.SC_E_PAYLOAD_EMPTY
    # an escaped-to-nothing payload is impossible; an absent payload is still fine
    claims = dict(BASE)
    del claims["payload"]
    assert VERIFIER.verify(KEY.sign_raw(HEADER, json.dumps(claims).encode()), now=NOW).payload is None


@pytest.mark.parametrize("alg", ["hs256", "Hs256", "hS256"])
def test_lowercase_alg_is_an_algorithm_error(alg):
    header = json.dumps({"alg": alg, "typ": "JWT"}).encode()
    token = _token(header)
    with pytest.raises(AlgorithmError):
        VERIFIER.verify(token, now=NOW)
    assert isinstance(VERIFIER.verify_batch([token], now=NOW)[0], AlgorithmError)
    with pytest.raises(AlgorithmError):
        VERIFIER.verify_many([token], now=NOW).credential(0)
    with pytest.raises(AlgorithmError):
        KEY.verify(token)
