"""The claims scanner's SSE2 paths (csrc/slurmcred.c: the run of plain bytes
in a string, 16 at a time, and the integer fast path) against its portable
byte-by-byte path: for every input both must give the same status and
byte-for-byte the same scratch region (sc_result, host/cluster/payload and
everything else sc_verify writes). The inputs put a special byte ('"', an
escape, a control character, valid and invalid UTF-8) at every offset of a
string around the 16-byte steps and the string's end at every distance from
the end of the buffer, where the SSE2 path switches to its last, overlapping
load; integers of every length end at every such distance too. Skips the
SSE2 half where it is not compiled in (non-x86-64)."""
import json

import pytest
from hypothesis import given, settings, strategies as st

from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

RING = Keyring.from_key_bytes(b"k" * 32)
KEY = RING.default_key().key
NOW = 1_700_000_000
VERIFIER = Verifier(RING, verifier_uid=500)
HEADER = b'{"alg":"HS256","typ":"JWT"}'
BASE = {"iat": NOW, "exp": NOW + 60, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
        "cluster": "c", "uid": 1000, "gid": 100, "host": "node1", "payload": "AQID"}
# BASE as JSON without its closing brace: a member appended to it is the last one
PREFIX = json.dumps(BASE, separators=(",", ":")).encode()[:-1]

HAVE_SSE2 = lib.sc_scan_select(lib.SC_SCAN_SSE2) == lib.SC_SCAN_SSE2
HAVE_AVX512 = lib.sc_scan_select(lib.SC_SCAN_AVX512) == lib.SC_SCAN_AVX512
lib.sc_scan_select(lib.SC_SCAN_AUTO)
IMPLS = ([lib.SC_SCAN_PORTABLE] + ([lib.SC_SCAN_SSE2] if HAVE_SSE2 else [])
         + ([lib.SC_SCAN_AVX512] if HAVE_AVX512 else []))
needs_sse2 = pytest.mark.skipif(not HAVE_SSE2, reason="the SSE2 scanner is not compiled in (not x86-64)")

# What a string body may hold at the probed offset, and whether the string is then valid.
SPECIALS = [
    (b'\\"', True), (b"\\\\", True), (b"\\/", True), (b"\\n", True), (b"\\u00e9", True),
    (b"\\ud83d\\ude00", True), (b"\xc3\xa9", True), (b"\xe2\x82\xac", True), (b"\xf0\x9f\x98\x80", True),
    (b"\x7f", True), (b" ", True),
    (b"\x01", False), (b"\x1f", False), (b"\t", False), (b"\\x", False), (b"\\u0000", False),
    (b"\\udc00", False), (b"\\ud83d", False), (b"\xff", False), (b"\x80", False), (b"\xc0\xaf", False),
    (b"\xed\xa0\x80", False), (b"\xf4\x90\x80\x80", False), (b"\xe2\x82", False),
]


def _verify(token: bytes):
    cap = lib.sc_scratch_need(len(token))
    buf = ffi.new("uint8_t[]", cap)
    rc = lib.sc_verify(RING.snapshot().keyset, VERIFIER.c_policy, token, len(token), NOW, buf, cap)
    return rc, ffi.buffer(buf, cap)[:]


def _all_impls(claims: bytes):
    """(status, scratch) of sc_verify on these claims, the same under every scanner."""
    token = KEY.sign_raw(HEADER, claims).encode()
    got = []
    try:
        for impl in IMPLS:
            assert lib.sc_scan_select(impl) == impl
            got.append(_verify(token))
    finally:
        lib.sc_scan_select(lib.SC_SCAN_AUTO)
    assert all(g == got[0] for g in got), (claims, [g[0] for g in got])
    return got[0][0]


def test_select_reports_what_it_can():
    assert lib.sc_scan_select(lib.SC_SCAN_PORTABLE) == lib.SC_SCAN_PORTABLE
    assert lib.sc_scan_select(99) == -1
    assert lib.sc_scan_select(lib.SC_SCAN_AUTO) in (lib.SC_SCAN_PORTABLE, lib.SC_SCAN_SSE2,
                                                    lib.SC_SCAN_AVX512)
    lib.sc_scan_select(lib.SC_SCAN_AUTO)


@needs_sse2
def test_auto_is_the_widest_compiled_in():
    assert lib.sc_scan_select(lib.SC_SCAN_AUTO) == (lib.SC_SCAN_AVX512 if HAVE_AVX512 else lib.SC_SCAN_SSE2)


@pytest.mark.parametrize("special,valid", SPECIALS)
def test_special_byte_at_every_offset_and_end_distance(special, valid):
    seen = set()
    for k in range(0, 36):                          # offset of the special byte in the string
        for after in (0, 1, 15, 16, 17):            # plain bytes after it
            body = b"a" * k + special + b"b" * after
            for tail in (0, 1, 2, 13, 14, 15, 16, 17):   # bytes after the closing quote
                # as the value of the last member, then the end of the buffer
                rc = _all_impls(PREFIX + b',"zz":"' + body + b'"}' + b" " * tail)
                assert (rc == 0) == valid, (special, k, after, tail, rc)
                seen.add(rc)
        # as the host (copied out, so the bytes are compared too) and as a name
        rc = _all_impls(PREFIX.replace(b'"host":"node1"', b'"host":"' + body + b'"') + b"}")
        assert (rc == 0) == valid, (special, k, rc)
        _all_impls(PREFIX + b',"' + body + b'":1}')
    assert seen == ({0} if valid else {lib.SC_E_UTF8})


def test_unterminated_string_at_every_length():
    for k in range(0, 40):
        for end in (b"", b"a", b"\\", b"\\u12", b"\xc3", b"\xf0\x9f"):
            assert _all_impls(PREFIX + b',"zz":"' + b"x" * k + end) == lib.SC_E_UTF8
            assert _all_impls(b'{"' + b"x" * k + end) == lib.SC_E_UTF8   # under 16 bytes too


def test_strings_in_buffers_shorter_than_16_bytes():
    for k in range(0, 12):
        for special, valid in SPECIALS:
            body = b"q" * k + special
            _all_impls(b'{"' + body + b'":1}')
            _all_impls(b'{"a":"' + body + b'"}')


@pytest.mark.parametrize("sign", [b"", b"-"])
def test_integers_of_every_length_at_every_end_distance(sign):
    for digits in range(1, 22):
        text = b"".join(b"%d" % ((d * 7 + 3) % 9 + 1) for d in range(digits))
        value = int(sign + text)
        for frac in (b"", b".5", b"e3", b"E-2", b"0", b".", b"e"):
            for tail in (0, 1, 14, 15, 16, 17):
                claims = PREFIX.replace(b'"iat":%d' % NOW, b'"iat":' + sign + text + frac) + b"}" + b" " * tail
                rc = _all_impls(claims)
                if frac == b"" and -(2 ** 63) <= value < 2 ** 63:
                    assert rc == 0, (digits, tail)
                elif frac == b"":
                    assert rc == lib.SC_E_INT_RANGE
                elif frac in (b".", b"e"):
                    assert rc == lib.SC_E_CLAIMS_JSON
                elif frac == b"0":       # "iat":1230 is just another integer
                    assert rc == (0 if -(2 ** 63) <= value * 10 < 2 ** 63 else lib.SC_E_INT_RANGE)
                else:
                    assert rc == lib.SC_E_INT_TYPE
                # the last member: the number ends right at the buffer's end
                _all_impls(PREFIX + b',"zz":' + sign + text + frac + b"}" + b" " * tail)


def test_integer_values_are_exact():
    for digits in range(1, 19):
        for lead in (b"1", b"9"):
            text = lead + b"".join(b"%d" % ((d * 3 + 5) % 10) for d in range(digits - 1))
            claims = PREFIX.replace(b'"iat":%d' % NOW, b'"iat":-' + text) + b"}"
            token = KEY.sign_raw(HEADER, claims).encode()
            for impl in IMPLS:
                lib.sc_scan_select(impl)
                assert VERIFIER.verify(token, now=NOW).iat == -int(text)
            lib.sc_scan_select(lib.SC_SCAN_AUTO)


def test_integers_near_the_start_of_the_buffer():
    # the fast path needs 15 bytes before the number; shorter prefixes use the loop
    for pad in range(0, 20):
        for num in (b"1", b"12345678", b"123456789012345", b"1234567890123456", b"-0", b"01", b"1.5"):
            _all_impls(b'{"' + b"p" * pad + b'":' + num + b"}")
            _all_impls(b'{"' + b"p" * pad + b'":' + num + b',"exp":' + num + b"}" + b" " * 16)


text_bytes = st.binary(max_size=40) | st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass"))


@settings(max_examples=300)
@given(st.lists(st.tuples(text_bytes, st.one_of(text_bytes, st.integers(-(2 ** 70), 2 ** 70))), max_size=6),
       st.integers(0, 20))
def test_random_members_same_under_every_scanner(members, tail):
    parts = [b'"' + k + b'":' + (b'"' + v + b'"' if isinstance(v, bytes) else b"%d" % v) for k, v in members]
    _all_impls(PREFIX + b"".join(b"," + p for p in parts) + b"}" + b" " * tail)
