"""decode(): PyJWT's jwt.decode for HS256, checked against PyJWT itself on random
claim sets, clocks, leeways, options, audiences, issuers and tampered tokens;
and the fast claims path of HS256Key.verify against the strict reader."""
import base64
import json
import threading
import time
from datetime import datetime, timedelta, timezone
from functools import partial
from unittest import mock

import jwt as pyjwt
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import slurmauth_fast
from slurmauth_fast import HS256Key, decode
from slurmauth_fast import errors as E
from slurmauth_fast import jwt_decode
from slurmauth_fast._bindings import hs256 as _hs256
from slurmauth_fast.jsonutil import loads_object
from slurmauth_fast.jws import KNOWN_HEADERS

KEY = b"0123456789abcdef0123456789abcdef"
NOW = 1_800_000_000.25          # the clock both libraries read in the differential tests


def b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def forge(header: bytes, claims: bytes, key: bytes = KEY) -> str:
    return HS256Key(key).sign_raw(header, claims)


class _FrozenDatetime(datetime):
    """PyJWT reads datetime.now(tz=timezone.utc); this one is always NOW."""

    @classmethod
    def now(cls, tz=None):  # type: ignore[override]
        return datetime.fromtimestamp(NOW, tz=timezone.utc)


def frozen_clock():
    """Both libraries' clocks on the same instant (PyJWT's float, used for ours)."""
    pyjwt_now = _FrozenDatetime.now(tz=timezone.utc).timestamp()
    return (mock.patch("jwt.api_jwt.datetime", _FrozenDatetime),
            mock.patch.object(jwt_decode, "_now", lambda: pyjwt_now))


# Outcome categories, most specific first: a refusal is compared by the first
# of these names its exception is an instance of (in each library's classes).
CATEGORIES = ("ExpiredSignatureError", "ImmatureSignatureError", "InvalidIssuedAtError",
              "InvalidAudienceError", "InvalidIssuerError", "MissingRequiredClaimError",
              "InvalidSubjectError", "InvalidJTIError", "InvalidAlgorithmError",
              "InvalidSignatureError", "DecodeError", "InvalidTokenError")


def category(exc: BaseException, module) -> str:
    for name in CATEGORIES:
        if isinstance(exc, getattr(module, name)):
            return name
    return type(exc).__name__       # TypeError and the like: compared by name


def outcome(fn, module):
    try:
        return ("ok", fn())
    except (module.InvalidTokenError, TypeError) as e:
        return ("refused", category(e, module))


def same_types(a, b) -> bool:
    """== and the same type at every level (1 == 1.0 == True is not enough)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b))
    return a == b


def assert_same(ours, theirs):
    event(ours[0] if ours[0] == "ok" else ours[1])
    assert ours[0] == theirs[0], (ours, theirs)
    if ours[0] == "ok":
        assert ours[1] == theirs[1] and same_types(ours[1], theirs[1])
    else:
        assert ours[1] == theirs[1], (ours, theirs)


# --- strategies -------------------------------------------------------------

# JSON both libraries read alike: no NUL, no lone surrogate, int64 integers, finite reals.
TEXT = partial(st.text, alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))
INT64 = st.integers(min_value=-(2**63), max_value=2**63 - 1)
FLOAT = st.floats(allow_nan=False, allow_infinity=False)
SCALAR = st.one_of(INT64, FLOAT, TEXT(max_size=12), st.booleans(), st.none())
VALUE = st.recursive(SCALAR, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(TEXT(max_size=6), inner, max_size=3)), max_leaves=8)
# A time claim near the clock (seconds either side, whole or not), or a value PyJWT's int() refuses or takes.
TIME = st.one_of(
    st.integers(min_value=-5, max_value=5).map(lambda d: int(NOW) + d),
    st.floats(min_value=-5, max_value=5, allow_nan=False).map(lambda d: NOW + d),
    st.integers(min_value=-5, max_value=5).map(lambda d: str(int(NOW) + d)),
    st.sampled_from(["soon", "", True, False, None, [1], {"a": 1}, 1e300, -1e300, 0]),
)
AUDS = ["api", "web", "other"]
AUD_CLAIM = st.one_of(st.sampled_from(AUDS), st.lists(st.sampled_from(AUDS), max_size=3),
                      st.sampled_from(["", [], 5, ["api", 5], None, {"api": 1}]))
ISS_CLAIM = st.one_of(st.sampled_from(["https://a", "https://b"]), st.sampled_from([5, None, ""]))
STR_OR_NOT = st.one_of(TEXT(max_size=6), st.sampled_from([5, None, ["x"]]))


@st.composite
def claim_sets(draw):
    claims = draw(st.dictionaries(TEXT(max_size=8), VALUE, max_size=5))
    for name, strategy in (("exp", TIME), ("nbf", TIME), ("iat", TIME), ("aud", AUD_CLAIM),
                           ("iss", ISS_CLAIM), ("sub", STR_OR_NOT), ("jti", STR_OR_NOT)):
        if draw(st.booleans()):
            claims[name] = draw(strategy)
    return claims


LEEWAY = st.one_of(st.sampled_from([0, 1, 2, 3.5, -1]),
                   st.sampled_from([timedelta(seconds=2), timedelta(seconds=0.5)]))
AUDIENCE = st.one_of(st.none(), st.sampled_from(AUDS), st.lists(st.sampled_from(AUDS), min_size=1, max_size=2))
ISSUER = st.one_of(st.none(), st.sampled_from(["https://a", "https://b"]),
                   st.lists(st.sampled_from(["https://a", "https://b"]), min_size=1, max_size=2))
OPTIONS = st.one_of(st.none(), st.fixed_dictionaries({}, optional={
    "verify_exp": st.booleans(), "verify_nbf": st.booleans(), "verify_iat": st.booleans(),
    "verify_aud": st.booleans(), "verify_iss": st.booleans(), "verify_sub": st.booleans(),
    "verify_jti": st.booleans(), "strict_aud": st.booleans(), "verify_signature": st.booleans(),
    "require": st.lists(st.sampled_from(["exp", "nbf", "iat", "aud", "iss", "sub", "jti"]), max_size=3),
}))
# Headers: known segments (PyJWT's own, joserfc's) and ones parsed after the MAC.
HEADERS = st.sampled_from([None, {"kid": "k1"}, {"typ": "at+jwt"}, {"cty": "JWT", "kid": "x"}])


def make_token(claims, header, signer):
    if signer == "pyjwt":
        return pyjwt.encode(claims, KEY, algorithm="HS256", headers=header)
    if signer == "joserfc-order":
        return forge(b'{"typ":"JWT","alg":"HS256"}', json.dumps(claims).encode())
    return HS256Key(KEY).sign(claims, header)


# --- the differential tests ---------------------------------------------------

@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(claims=claim_sets(), header=HEADERS, signer=st.sampled_from(["pyjwt", "ours", "joserfc-order"]),
       leeway=LEEWAY, audience=AUDIENCE, issuer=ISSUER, options=OPTIONS,
       key_form=st.sampled_from(["bytes", "str", "HS256Key"]))
def test_decode_matches_pyjwt(claims, header, signer, leeway, audience, issuer, options, key_form):
    if signer == "pyjwt" and "iss" in claims and not isinstance(claims["iss"], str):
        signer = "ours"                     # pyjwt.encode refuses a non-string iss
    tok = make_token(claims, header, signer)
    key = {"bytes": KEY, "str": KEY.decode(), "HS256Key": HS256Key(KEY)}[key_form]
    kwargs = dict(algorithms=["HS256"], options=options, audience=audience, issuer=issuer, leeway=leeway)
    clock = frozen_clock()
    with clock[0], clock[1]:
        theirs = outcome(lambda: pyjwt.decode(tok, KEY, **kwargs), pyjwt.exceptions)
        # three times: parsed, then kept (second sight), then a copy of what was kept
        for _ in range(3):
            assert_same(outcome(lambda: decode(tok, key, **kwargs), E), theirs)


@settings(max_examples=300)
@given(claims=claim_sets(), header=HEADERS, data=st.data())
def test_tampered_tokens_refused_like_pyjwt(claims, header, data):
    tok = bytearray(make_token(claims, header, "ours").encode())
    i = data.draw(st.integers(min_value=0, max_value=len(tok) - 1))
    tok[i] = data.draw(st.sampled_from(b"ABCabc012-_.=+/ \x00").filter(lambda b: b != tok[i]))
    token = bytes(tok)
    options = {"verify_exp": False, "verify_nbf": False, "verify_iat": False, "verify_aud": False,
               "verify_sub": False, "verify_jti": False}
    ours = outcome(lambda: decode(token, KEY, options=options), E)
    theirs = outcome(lambda: pyjwt.decode(token, KEY, algorithms=["HS256"], options=options), pyjwt.exceptions)
    if theirs[0] == "ok":
        # what PyJWT lets through and we do not: '=' padding and the like (we read strict base64url)
        assert ours[0] == "refused" and ours[1] == "DecodeError", (token, ours)
        return
    assert ours[0] == "refused"
    # a forged token fails on its tag before an unknown header is read; PyJWT may name the header
    if ours[1] != theirs[1]:
        assert ours[1] == "InvalidSignatureError" and theirs[1] in (
            "DecodeError", "InvalidAlgorithmError", "InvalidTokenError"), (token, ours, theirs)


@pytest.mark.parametrize("exp_offset,leeway,expired", [
    (0, 0, True), (1, 0, False), (-1, 1, True), (-1, 1.5, False), (-2, timedelta(seconds=3), False),
])
def test_exp_boundary(exp_offset, leeway, expired):
    # PyJWT: expired when exp <= now - leeway (exp equal to now has expired)
    now = 1_800_000_000.0
    tok = HS256Key(KEY).sign({"exp": int(now) + exp_offset})
    with mock.patch.object(jwt_decode, "_now", lambda: now):
        if expired:
            with pytest.raises(E.ExpiredSignatureError) as ei:
                decode(tok, KEY, leeway=leeway)
            assert ei.value.claim == "exp" and isinstance(ei.value, E.ExpiredError)
        else:
            assert decode(tok, KEY, leeway=leeway)["exp"] == int(now) + exp_offset


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_not_yet_valid(claim):
    now = 1_800_000_000.0
    tok = HS256Key(KEY).sign({claim: int(now) + 10})
    with mock.patch.object(jwt_decode, "_now", lambda: now):
        with pytest.raises(E.ImmatureSignatureError) as ei:
            decode(tok, KEY)
        assert ei.value.claim == claim
        assert decode(tok, KEY, leeway=10)[claim] == int(now) + 10
        assert decode(tok, KEY, options={f"verify_{claim}": False})[claim] == int(now) + 10


def test_claim_errors_carry_claim_and_base():
    tok = HS256Key(KEY).sign({"aud": "web", "iss": "https://a"})
    with pytest.raises(E.InvalidAudienceError) as ei:
        decode(tok, KEY, audience="api", issuer="https://a")
    assert ei.value.claim == "aud" and isinstance(ei.value, E.SlurmAuthError)
    with pytest.raises(E.InvalidIssuerError) as ei2:
        decode(tok, KEY, audience="web", issuer="https://b")
    assert ei2.value.claim == "iss"
    with pytest.raises(E.MissingRequiredClaimError) as ei3:
        decode(tok, KEY, audience="web", options={"require": ["exp"]})
    assert ei3.value.claim == "exp" and str(ei3.value) == 'Token is missing the "exp" claim'
    assert ei3.value.slurm_errno == E.ESLURM_AUTH_CRED_INVALID


def test_pyjwt_names_in_the_package_tree():
    assert E.InvalidSignatureError is E.SignatureError and E.InvalidAlgorithmError is E.AlgorithmError
    for name in ("InvalidTokenError", "DecodeError", "InvalidSignatureError", "ExpiredSignatureError",
                 "ImmatureSignatureError", "InvalidIssuedAtError", "InvalidAudienceError",
                 "InvalidIssuerError", "MissingRequiredClaimError", "InvalidAlgorithmError",
                 "InvalidSubjectError", "InvalidJTIError"):
        cls = getattr(slurmauth_fast, name)
        assert issubclass(cls, E.InvalidTokenError) and issubclass(cls, E.CredentialError), name
    # the format errors raised before are PyJWT DecodeErrors now, and stay what they were
    assert issubclass(E.SegmentError, E.DecodeError) and issubclass(E.SegmentError, E.TokenFormatError)
    assert issubclass(E.SignatureError, E.DecodeError) and not issubclass(E.SignatureError, E.TokenFormatError)
    assert issubclass(E.InvalidKeyError, E.BadArgumentError)


# --- algorithms, headers, keys ------------------------------------------------

GOOD = HS256Key(KEY).sign({"uid": 1000})


@pytest.mark.parametrize("algorithms", [["RS256"], ["HS512"], ["none"], ("hs256",)])
def test_algorithms_without_hs256_refused(algorithms):
    with pytest.raises(E.InvalidAlgorithmError):
        decode(GOOD, KEY, algorithms=algorithms)


@pytest.mark.parametrize("algorithms", [None, []])
def test_algorithms_required_like_pyjwt(algorithms):
    with pytest.raises(E.DecodeError):
        decode(GOOD, KEY, algorithms=algorithms)
    with pytest.raises(pyjwt.DecodeError):
        pyjwt.decode(GOOD, KEY, algorithms=algorithms)


@pytest.mark.parametrize("options", [None, {"verify_signature": False}])
def test_alg_none_never_accepted(options):
    none_tok = b64u(b'{"alg":"none","typ":"JWT"}') + "." + b64u(b'{"uid":0}') + "."
    for tok in (none_tok, forge(b'{"alg":"none","typ":"JWT"}', b'{"uid":0}')):
        with pytest.raises(E.InvalidTokenError):
            decode(tok, KEY, algorithms=["none", "HS256"], options=options)


def test_verify_signature_off_skips_only_the_mac():
    tok = HS256Key(b"some other key").sign({"uid": 5, "exp": 1})
    assert decode(tok, options={"verify_signature": False}) == {"uid": 5, "exp": 1}
    assert pyjwt.decode(tok, options={"verify_signature": False}) == {"uid": 5, "exp": 1}
    with pytest.raises(E.ExpiredSignatureError):
        decode(tok, options={"verify_signature": False, "verify_exp": True})
    with pytest.raises(E.InvalidSignatureError):
        decode(tok, KEY)


@pytest.mark.parametrize("header,exc", [
    (b'{"alg":"HS256","kid":5}', E.InvalidTokenError),
    (b'{"alg":"HS256","crit":["exp"]}', E.InvalidTokenError),
    (b'{"alg":"HS256","crit":[]}', E.InvalidTokenError),
    (b'{"alg":"HS256","b64":false,"crit":["b64"]}', E.DecodeError),
    (b'{"alg":"HS512"}', E.InvalidAlgorithmError),
    (b'{"typ":"JWT"}', E.InvalidAlgorithmError),
    (b'{"alg":"HS256","alg":"HS256"}', E.DecodeError),
    (b'[1]', E.DecodeError),
])
def test_header_rules(header, exc):
    with pytest.raises(exc):
        decode(forge(header, b'{"a":1}'), KEY)
    with pytest.raises(pyjwt.InvalidTokenError):
        if b'"alg":"HS256","alg"' not in header:     # PyJWT takes duplicate keys
            pyjwt.decode(forge(header, b'{"a":1}'), KEY, algorithms=["HS256"])
        else:
            raise pyjwt.InvalidTokenError


def test_known_headers_table():
    segments = _hs256.known_header_segments()
    assert len(segments) == len(KNOWN_HEADERS) >= 3
    for seg, header in zip(segments, KNOWN_HEADERS):
        assert header["alg"] == "HS256"
        assert json.loads(base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))) == header
    assert pyjwt.encode({"a": 1}, KEY, algorithm="HS256").split(".")[0].encode() in segments
    # a verified header is the caller's own copy
    got = HS256Key(KEY).verify(GOOD)
    got.header["alg"] = "changed"
    assert HS256Key(KEY).verify(GOOD).header == {"alg": "HS256", "typ": "JWT"}


def test_key_forms_keep_nothing():
    """A str or bytes-like key is used for its own call only: the same
    answers from every form, and nothing of it left in the module."""
    before = {name: repr(value) for name, value in vars(jwt_decode).items()}
    assert decode(GOOD, KEY) == decode(GOOD, KEY.decode()) == decode(GOOD, bytearray(KEY)) == \
        decode(GOOD, memoryview(KEY)) == decode(GOOD, HS256Key(KEY)) == {"uid": 1000}
    for i in range(40):
        with pytest.raises(E.InvalidSignatureError):
            decode(GOOD, b"key number %d" % i)
    assert {name: repr(value) for name, value in vars(jwt_decode).items()} == before


@pytest.mark.parametrize("key", [b"", "", b"-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----\n",
                                 b"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI", b"ssh-rsa AAAAB3", b"ssh-dss",
                                 b"ecdsa-sha2-nistp256 AAAA", "ecdsa-sha2-nistp384", b"ecdsa-sha2-nistp521 x"])
def test_unusable_keys_refused(key):
    with pytest.raises(E.InvalidKeyError):
        decode(GOOD, key)
    with pytest.raises(pyjwt.InvalidKeyError):
        pyjwt.decode(GOOD, key, algorithms=["HS256"])


@pytest.mark.parametrize("key", [b"comment\n-----BEGIN CERTIFICATE-----\nMIIB", "-----BEGIN "])
def test_any_pem_marker_refused(key):
    """Stricter than PyJWT, whose PEM rule wants a whole PEM block: any key
    holding a PEM begin marker is refused, before the token is looked at."""
    with pytest.raises(E.InvalidKeyError, match="public key or certificate"):
        decode(b"not a token", key)


@pytest.mark.parametrize("key", [b"-----BEGIN", b"x-----BEGIN", b"ssh-ed2551", b" ssh-rsa AAAA", b"\0"])
def test_near_misses_are_secrets(key):
    """Keys that only resemble the refused forms are used as secrets, as PyJWT uses them."""
    tok = pyjwt.encode({"uid": 1}, key, algorithm="HS256")
    assert decode(tok, key) == pyjwt.decode(tok, key, algorithms=["HS256"]) == {"uid": 1}


def test_key_type_checked():
    with pytest.raises(E.BadArgumentError):
        decode(GOOD, 12345)  # type: ignore[arg-type]


def test_size_limit_first():
    with pytest.raises(E.TokenTooLargeError):
        decode("x" * 100, KEY, max_len=99)
    with pytest.raises(E.TokenTooLargeError):
        decode(GOOD, KEY, max_len=len(GOOD) - 1)


def test_closed_key():
    k = HS256Key(KEY)
    k.close()
    with pytest.raises(E.BadArgumentError):
        k.verify(GOOD)
    with pytest.raises(E.BadArgumentError):
        decode(GOOD, k)


def test_large_token_beyond_the_scratch_buffer():
    claims = {"blob": "x" * (3 * _hs256.SCRATCH_CAP), "n": 1}
    tok = HS256Key(KEY).sign(claims)
    assert decode(tok, KEY) == claims == HS256Key(KEY).verify(tok).claims


def test_threads_do_not_share_results():
    k = HS256Key(KEY)
    tokens = [k.sign({"i": i, "pad": "p" * (i * 37 % 500)}) for i in range(40)]
    failures = []

    def worker(offset):
        for n in range(400):
            i = (n + offset) % len(tokens)
            if decode(tokens[i], KEY)["i"] != i or k.verify(tokens[i]).claims["i"] != i:
                failures.append(i)

    threads = [threading.Thread(target=worker, args=(j,)) for j in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures


# --- the fast claims path against the strict reader -----------------------------

def strict(raw: bytes):
    try:
        return ("ok", loads_object(raw, E.ClaimsError, "claims"))
    except E.ClaimsError:
        return ("refused", "ClaimsError")


def fast(raw: bytes, header: bytes):
    try:
        return ("ok", HS256Key(KEY).verify(forge(header, raw)).claims)
    except E.ClaimsError:
        return ("refused", "ClaimsError")


# Texts the strict reader refuses or must look at closely, spliced into valid JSON.
TRICKY = st.sampled_from([
    '"\\u0000"', '"a\\u0000b"', '"\\ud800"', '"\\udc00x"', '"\\ud83d\\ude00"', "NaN", "-Infinity",
    "Infinity", "9223372036854775807", "9223372036854775808", "-9223372036854775808",
    "-9223372036854775809", "123456789012345678901234", "1e309", "-1e309", "1e308", "1E-400",
    "0.1", "-0", "1.5e3", "[" * 17 + "]" * 17, "[" * 15 + "]" * 15, '{"k":1,"k":2}',
    '{"a":{"b":1,"b":1}}', '"\\"', '"\\\\"', '"é"', "true", "null", '"\\/"',
])


@st.composite
def json_texts(draw):
    obj = draw(st.dictionaries(TEXT(max_size=5), VALUE, max_size=4))
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    if draw(st.booleans()):                         # splice in a tricky value or a duplicate key
        tricky = draw(TRICKY)
        key = draw(st.sampled_from(list(obj) or ["k"]))
        text = "{" + json.dumps(key) + ":" + tricky + ("," + text[1:] if obj else "}")
    if draw(st.booleans()):
        text = draw(st.sampled_from(["", " ", "\n"])) + text + draw(st.sampled_from(["", " ", "x", "}"]))
    return text.encode("utf-8", "surrogatepass")


@settings(max_examples=500)
@given(raw=json_texts(), header=st.sampled_from([b'{"alg":"HS256","typ":"JWT"}', b'{"alg":"HS256","kid":"a"}']))
def test_fast_claims_equal_strict_reader(raw, header):
    ours, ref = fast(raw, header), strict(raw)
    assert ours[0] == ref[0], (raw, ours, ref)
    if ours[0] == "ok":
        assert same_types(ours[1], ref[1])


@pytest.mark.parametrize("raw", [
    b'{"a":1,"a":2}', b'{"a":{"b":1,"b":2}}', b'{"a":[{"b":1},{"c":1,"c":1}]}', b'[1]', b'"x"',
    b'{"a":NaN}', b'{"a":-Infinity}', b'{"a":9223372036854775808}', b'{"a":1e400}',
    b'{"a":"\\u0000"}', b'{"a":"\\udfff"}', b'{"a":' + b"[" * 20 + b"]" * 20 + b"}", b'{"a":1} x',
    b'\xef\xbb\xbf{"a":1}', b'{"a":"\xed\xa0\x80"}', b'{"a":1', b"",
])
def test_decode_keeps_the_strict_json_rules(raw):
    tok = forge(b'{"alg":"HS256","typ":"JWT"}', raw) if raw else None
    if tok is None:
        return
    with pytest.raises(E.DecodeError):
        decode(tok, KEY)
    with pytest.raises(E.ClaimsError):
        HS256Key(KEY).verify(tok)


def test_whitespace_and_nesting_accepted_as_json_loads():
    raw = b' {"a" : [1, {"b": {"c": 2.5}}], "d": "\\u00e9\\ud83d\\ude00"} \n'
    tok = forge(b'{"alg":"HS256","typ":"JWT"}', raw)
    assert same_types(decode(tok, KEY), json.loads(raw))
    assert same_types(HS256Key(KEY).verify(tok).claims, json.loads(raw))


# --- claims parsed once per token ---------------------------------------------------

def test_parsed_objects_hand_out_copies_and_stay_bounded():
    from slurmauth_fast.jsonutil import ParsedObjects
    cache = ParsedObjects(maxsize=2, max_bytes=64)
    raw = b'{"a":[1,{"b":2}],"c":{"d":[3]},"e":"f"}'
    first = json.loads(raw)
    assert cache.put(raw, first) is first and cache.get(raw) is None       # seen once: not kept
    second = json.loads(raw)
    kept = cache.put(raw, second)
    assert kept == first and kept is not second and len(cache) == 1
    for got in (kept, cache.get(raw)):
        assert got == first
        got["a"][1]["b"] = 99
        got["c"]["d"].append(4)
        got["e"] = "changed"
        got["new"] = 1
    assert cache.get(raw) == first                      # nothing a caller changed reached the cache
    big = b'{"x":"' + b"y" * 64 + b'"}'
    obj = json.loads(big)
    assert cache.put(big, obj) is obj and cache.put(big, obj) is obj and cache.get(big) is None
    for i in range(5):                                  # full: starts over, never above maxsize
        r = b'{"i":%d}' % i
        cache.put(r, json.loads(r))
        cache.put(r, json.loads(r))
        assert len(cache) <= 2 and cache.get(r) == {"i": i}


def test_a_token_decoded_again_gives_fresh_claims_and_is_checked_again():
    key = HS256Key(b"k" * 32)
    claims = {"sub": "alice", "groups": ["a", "b"], "ext": {"x": [1]}, "exp": 2 ** 40}
    tok = key.sign(claims)
    outs = [decode(tok, key) for _ in range(4)]
    assert all(o == claims for o in outs) and len({id(o) for o in outs}) == 4
    outs[2]["groups"].append("root")
    outs[2]["ext"]["x"][0] = 0
    outs[3]["sub"] = "root"
    assert decode(tok, key) == claims
    with pytest.raises(E.InvalidSignatureError):
        decode(tok, HS256Key(b"j" * 32))
    with pytest.raises(E.ExpiredSignatureError):
        decode(tok, key, leeway=-(2 ** 41))
    with pytest.raises(E.InvalidAudienceError):
        decode(key.sign({**claims, "aud": "other"}), key, audience="api")


def test_a_kept_token_is_checked_against_each_call_s_arguments_and_clock(monkeypatch):
    """A token decoded again (its claims kept with their time window and the
    arguments they last passed with) answers exactly as a first decode."""
    key = HS256Key(b"k" * 32)
    now = int(time.time())
    tok = key.sign({"iss": "a", "aud": "x", "sub": "s", "iat": now, "exp": now + 100})
    for _ in range(3):
        assert decode(tok, key, issuer="a", audience="x", subject="s")["sub"] == "s"
    with pytest.raises(E.InvalidIssuerError):                 # only one argument differs each time
        decode(tok, key, issuer="b", audience="x", subject="s")
    with pytest.raises(E.InvalidAudienceError):
        decode(tok, key, issuer="a", audience="y", subject="s")
    with pytest.raises(E.InvalidAudienceError):
        decode(tok, key, issuer="a")                     # the token has an aud, none expected
    with pytest.raises(E.InvalidSubjectError):
        decode(tok, key, issuer="a", audience="x", subject="t")
    assert decode(tok, key, issuer=["a", "b"], audience=["y", "x"])["iss"] == "a"
    assert decode(tok, key, issuer="a", audience="x", subject="s")["iss"] == "a"
    monkeypatch.setattr(jwt_decode, "_now", lambda: now + 100.5)
    with pytest.raises(E.ExpiredSignatureError):
        decode(tok, key, issuer="a", audience="x", subject="s")
    assert decode(tok, key, issuer="a", audience="x", subject="s", leeway=1)["iss"] == "a"
    monkeypatch.setattr(jwt_decode, "_now", lambda: now - 0.5)
    with pytest.raises(E.ImmatureSignatureError):
        decode(tok, key, issuer="a", audience="x", subject="s")
    assert decode(tok, key, issuer="a", audience="x", subject="s", leeway=timedelta(seconds=1))


def test_unverified_decodes_keep_nothing():
    jwt_decode._parsed.clear()
    tok = HS256Key(b"k" * 32).sign({"sub": "mallory"})
    for _ in range(3):
        assert decode(tok, options={"verify_signature": False}) == {"sub": "mallory"}
    assert len(jwt_decode._parsed) == 0
