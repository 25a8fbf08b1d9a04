"""Compact JWS HS256: RFC 7515 A.1, round trips, PyJWT interop, every malformed-input class."""
import base64
from functools import partial

import jwt as pyjwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conftest import load_vectors
from slurmauth_fast import DEFAULT_MAX_TOKEN, HS256Key, decode
from slurmauth_fast import errors as E

KEY = b"0123456789abcdef0123456789abcdef"
TOKEN_HEADER_SEGMENT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9"   # {"alg":"HS256","typ":"JWT"}


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forge(header: bytes, claims: bytes, key: bytes = KEY) -> str:
    """A correctly signed token over arbitrary header/claims bytes."""
    return HS256Key(key).sign_raw(header, claims)


@pytest.fixture(scope="module")
def key():
    return HS256Key(KEY)


def test_rfc7515_a1():
    v = load_vectors("rfc7515_a1_hs256.json")
    k = HS256Key(base64.urlsafe_b64decode(v["jwk"]["k"] + "=="))
    assert k.sign_raw(v["header_utf8"].encode(), v["payload_utf8"].encode()) == v["token"]
    hdr, claims = k.verify_raw(v["token"])
    assert hdr == v["header_utf8"].encode() and claims == v["payload_utf8"].encode()
    got = k.verify(v["token"])
    assert got.header == {"typ": "JWT", "alg": "HS256"}
    assert got.claims["iss"] == "joe" and got.claims["http://example.com/is_root"] is True


def test_sign_writes_libjwt_style_json(key):
    tok = key.sign({"uid": 1, "gid": 2, "host": "n1"}, {"kid": "k1"})
    h, c, _ = tok.split(".")
    assert base64.urlsafe_b64decode(h + "==") == b'{"alg":"HS256","kid":"k1","typ":"JWT"}'
    assert base64.urlsafe_b64decode(c + "=" * (-len(c) % 4)) == b'{"gid":2,"host":"n1","uid":1}'


def test_sign_refuses_other_alg(key):
    with pytest.raises(E.BadArgumentError):
        key.sign({"a": 1}, {"alg": "none"})


# Slurm (jansson) refuses NUL in JSON strings; signing and verifying do too (test_attacks.py).
TEXT = partial(st.text, alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
claims_strategy = st.dictionaries(
    TEXT(max_size=12),
    st.one_of(st.integers(min_value=-(2**63), max_value=2**63 - 1), TEXT(max_size=30), st.booleans(), st.none(),
              st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4)),
    max_size=8,
)


@given(claims=claims_strategy)
def test_roundtrip(claims):
    k = HS256Key(KEY)
    assert k.verify(k.sign(claims)).claims == claims


@given(claims=claims_strategy, data=st.data())
def test_any_single_byte_change_rejected(claims, data):
    k = HS256Key(KEY)
    tok = bytearray(k.sign(claims).encode())
    i = data.draw(st.integers(min_value=0, max_value=len(tok) - 1))
    new = data.draw(st.integers(min_value=0, max_value=255).filter(lambda b: b != tok[i]))
    tok[i] = new
    with pytest.raises(E.CredentialError):
        k.verify(bytes(tok))


#: Claims PyJWT checks when it decodes (an int "aud" is refused, "nbf" may be in the future):
#: this test is about the JSON both sides write and read, so the claims avoid them.
PYJWT_REGISTERED = {"exp", "nbf", "iat", "aud", "iss", "sub", "jti"}


@given(claims=st.dictionaries(TEXT(max_size=8).filter(lambda k: k not in PYJWT_REGISTERED),
                              st.integers(min_value=0, max_value=2**32), max_size=6))
def test_pyjwt_interop(claims):
    k = HS256Key(KEY)
    assert pyjwt.decode(k.sign(claims), KEY, algorithms=["HS256"], options={"verify_exp": False}) == claims
    assert k.verify(pyjwt.encode(claims, KEY, algorithm="HS256")).claims == claims


def test_wrong_key(key):
    tok = HS256Key(b"another key of some length......").sign({"a": 1})
    with pytest.raises(E.SignatureError):
        key.verify(tok)


# --- malformed input: each class has its own exception ---------------------

GOOD = HS256Key(KEY).sign({"uid": 1000, "gid": 1000})
H, C, S = GOOD.split(".")


@pytest.mark.parametrize("token,exc", [
    ("", E.SegmentError),
    ("abc", E.SegmentError),
    (f"{H}.{C}", E.SegmentError),
    (f"{H}.{C}.{S}.", E.SegmentError),
    (f"{H}.{C}.{S}.{S}", E.SegmentError),
    (f".{C}.{S}", E.SegmentError),
    (f"{H}..{S}", E.SegmentError),
    (f"{H}.{C}.", E.SignatureLengthError),
    (f"{H}.{C}.{S[:-1]}", E.SignatureLengthError),
    (f"{H}.{C}.{S}A", E.SignatureLengthError),
    (f"{H}.{C}.{S[:-1]}=", E.Base64Error),
    (f"{H}.{C}.{S[:-1]}+", E.Base64Error),
    (f"{H}.{C}.{S[:10]}\x00{S[11:]}", E.Base64Error),
    (f"{H}=.{C}.{S}", E.SignatureError),   # '=' is part of the signing input: MAC fails first
])
def test_malformed_rejected(key, token, exc):
    with pytest.raises(exc):
        key.verify(token)


def test_flipped_signature_bit_rejected(key):
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(S[-1]) ^ 4]  # canonical (low 2 bits unchanged), different tag
    with pytest.raises(E.SignatureError):
        key.verify(f"{H}.{C}.{S[:-1]}{last}")


def test_noncanonical_signature_rejected(key):
    # The last char of a 32-byte tag carries 2 unused bits; setting one gives the
    # same bytes under a lenient decoder. We refuse it.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    last = alphabet[alphabet.index(S[-1]) | 1]
    assert last != S[-1]
    with pytest.raises(E.NonCanonicalBase64Error):
        key.verify(f"{H}.{C}.{S[:-1]}{last}")


def test_noncanonical_segment_rejected_after_mac():
    header = b'{"alg":"HS256","typ":"JWT"}'  # 27 bytes -> 36 chars, no spare bits
    claims = b'{"a":1}'                      # 7 bytes -> 10 chars, 4 spare bits
    tok = forge(header, claims)
    h, c, _ = tok.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    c2 = c[:-1] + alphabet[alphabet.index(c[-1]) | 1]
    k = HS256Key(KEY)
    sig = b64u(k.mac(f"{h}.{c2}".encode()))
    with pytest.raises(E.NonCanonicalBase64Error):
        k.verify(f"{h}.{c2}.{sig}")


@pytest.mark.parametrize("claims_segment", ["eyJhIjox!", "eyJhIjoxf", "e"])
def test_bad_tag_reported_before_bad_claims_base64(key, claims_segment):
    """The claims are decoded while the tag is computed; the tag's verdict still comes first."""
    h = TOKEN_HEADER_SEGMENT
    bad_tag = b64u(HS256Key(b"another key").mac(f"{h}.{claims_segment}".encode()))
    good_tag = b64u(key.mac(f"{h}.{claims_segment}".encode()))
    with pytest.raises(E.SignatureError):
        key.verify(f"{h}.{claims_segment}.{bad_tag}")
    with pytest.raises(E.SignatureError):
        decode(f"{h}.{claims_segment}.{bad_tag}", KEY)
    with pytest.raises(E.Base64Error):
        key.verify(f"{h}.{claims_segment}.{good_tag}")


def test_too_large_rejected_before_anything_else(key):
    with pytest.raises(E.TokenTooLargeError):
        key.verify("x" * (DEFAULT_MAX_TOKEN + 1))
    with pytest.raises(E.TokenTooLargeError):
        key.verify(GOOD, max_len=len(GOOD) - 1)
    assert key.verify(GOOD, max_len=len(GOOD)).claims["uid"] == 1000


def test_non_ascii_token(key):
    with pytest.raises(E.TokenFormatError):
        key.verify(GOOD[:5] + "é" + GOOD[6:])


def test_token_type_checked(key):
    with pytest.raises(E.BadArgumentError):
        key.verify(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize("header,exc", [
    (b'{"alg":"none","typ":"JWT"}', E.AlgorithmError),
    (b'{"alg":"None"}', E.AlgorithmError),
    (b'{"alg":"NONE"}', E.AlgorithmError),
    (b'{"alg":"hs256"}', E.AlgorithmError),
    (b'{"alg":"HS512"}', E.AlgorithmError),
    (b'{"alg":"RS256"}', E.AlgorithmError),
    (b'{"typ":"JWT"}', E.AlgorithmError),
    (b'{"alg":null}', E.AlgorithmError),
    (b'{"alg":["HS256"]}', E.AlgorithmError),
    (b'{"alg":"HS256","alg":"HS256"}', E.HeaderError),
    (b'["HS256"]', E.HeaderError),
    (b'"HS256"', E.HeaderError),
    (b'{"alg":"HS256"', E.HeaderError),
    (b'{"alg":"HS256","x":NaN}', E.HeaderError),
    (b'{"alg":"HS\xff256"}', E.HeaderError),
    (b'{"alg":"HS256","x":' + b"[" * 40 + b"]" * 40 + b"}", E.HeaderError),
])
def test_header_rules(key, header, exc):
    with pytest.raises(exc):
        key.verify(forge(header, b'{"a":1}'))


@pytest.mark.parametrize("claims", [
    b'[1,2]', b'null', b'{"a":1', b'{"a":1,"a":2}', b'{"a":Infinity}', b'\xfe\xff', b"{}" + b" x",
])
def test_claims_rules(key, claims):
    with pytest.raises(E.ClaimsError):
        key.verify(forge(b'{"alg":"HS256","typ":"JWT"}', claims))


def test_errors_carry_slurm_errno(key):
    with pytest.raises(E.SignatureError) as ei:
        key.verify(f"{H}.{C}.{S[:-2]}AA")
    assert ei.value.slurm_errno == E.ESLURM_AUTH_CRED_INVALID == 6000
    assert ei.value.status is not None
    assert KEY.decode() not in str(ei.value)
