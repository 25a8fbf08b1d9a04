"""The C claims scanner against a reference built from Python's json module:
signed tokens with generated claims (types swapped, unknown and nested
members, escapes, whitespace, duplicates) must be accepted or refused exactly
as the reference says, and accepted ones must yield the same values."""
import base64
import json

from hypothesis import given, settings, strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast.jsonutil import MAX_DEPTH, loads_object
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier

RING = Keyring.from_key_bytes(b"k" * 32)
KEY = RING.default_key().key
NOW = 1_700_000_000
VERIFIER_UID = 500
U32 = 4294967295
INT64 = range(-(2 ** 63), 2 ** 63)
BASE = {"iat": NOW, "exp": NOW + 60, "ver": 0x2D00, "ruid": U32, "context": "auth",
        "cluster": "c", "uid": 1000, "gid": 100, "host": "node1", "payload": "AQID"}


def _strings(obj):
    if isinstance(obj, str):
        yield obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield k
            yield from _strings(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _strings(v)


def reference(raw: bytes):
    """What Slurm's rules (as slurmauth_fast states them) say about these claims:
    ("ok", fields) or ("reject", None)."""
    try:
        obj = loads_object(raw, E.ClaimsError, "claims")
    except E.ClaimsError:
        return "reject", None
    for s in _strings(obj):  # jansson refuses \u0000 and lone surrogates
        if "\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s):
            return "reject", None
    unknown = [k for k in obj if k not in BASE and k not in ("id", "sbcast", "net")]
    if len(unknown) > 32 or any(len(k.encode()) > 128 for k in obj):
        return "reject", None
    def is_int(v):
        return type(v) is int
    for name, lo, hi in (("iat", -(2 ** 63), 2 ** 63 - 1), ("exp", -(2 ** 63), 2 ** 63 - 1),
                         ("ver", 0, 65535), ("ruid", 0, U32), ("uid", 0, U32), ("gid", 0, U32)):
        if name in obj and (not is_int(obj[name]) or not lo <= obj[name] <= hi):
            return "reject", None
    for name in ("context", "cluster", "host", "payload"):
        if name in obj and not isinstance(obj[name], str):
            return "reject", None
    for name in ("sbcast", "net"):
        if name in obj and not isinstance(obj[name], dict):
            return "reject", None
    if "id" in obj:
        return "skip", None  # identity validation has its own tests
    if "exp" not in obj or obj["exp"] < NOW:
        return "reject", None
    if "ruid" not in obj or obj["ruid"] not in (U32, VERIFIER_UID):
        return "reject", None
    if any(n not in obj for n in ("iat", "uid", "gid", "host", "context")):
        return "reject", None
    if obj["context"] not in ("auth", "sack"):
        return "reject", None
    payload = None
    if "payload" in obj:
        p = obj["payload"]
        if p == "":                  # Slurm's xbase64_decode() fails on an empty string
            return "reject", None
        try:
            payload = base64.b64decode(p, validate=True)
        except ValueError:
            return "reject", None
        if base64.b64encode(payload).decode() != p:  # canonical padded only
            return "reject", None
    return "ok", (obj["uid"], obj["gid"], obj["host"], obj.get("cluster"), obj["context"],
                  obj["iat"], obj["exp"], obj.get("ver", -1), obj["ruid"], payload)


scalar = st.one_of(st.integers(-(2 ** 64), 2 ** 64), st.floats(allow_nan=False, allow_infinity=False),
                   st.booleans(), st.none(), st.text(max_size=6),
                   st.sampled_from(["auth", "sack", "launch", "AQID", "AQ==", "A", "", "\x00", "\ud800",
                                    "\u00e9", "\U0001F600", "a\"b\\c/\n"]))
value = st.recursive(scalar, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=4), c, max_size=3),
                     max_leaves=8)
confusable = st.deferred(lambda: st.sampled_from(CONFUSABLE))
# near misses of the scanner's one-word name match too (a known name's prefix or extension)
names = st.sampled_from(list(BASE) + ["id", "sbcast", "net", "sun", "x" * 129, "", "\u00e9",
                                      "ids", "iats", "hosts", "contex", "clusters", "sbcas", "rui",
                                      "payloads", "verx"])


@st.composite
def claims_json(draw):
    obj = dict(BASE)
    if draw(st.integers(0, 4)) == 0:
        obj.pop(draw(st.sampled_from(list(BASE))))
    # mostly one change at a time, so that each rule is what decides: a claim
    # given a confusable value, or any name given any value
    for name, v in draw(st.lists(st.tuples(names, value) | st.tuples(st.sampled_from(list(BASE)), confusable),
                                 max_size=draw(st.sampled_from([0, 1, 1, 1, 2])))):
        if name != "id":
            obj[name] = v
    if draw(st.integers(0, 3)) == 0:
        obj.update({f"u{i}": i for i in range(draw(st.integers(0, 40)))})
    text = json.dumps(obj, ensure_ascii=draw(st.booleans()),
                      separators=draw(st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")])))
    if draw(st.integers(0, 3)) == 0:  # a duplicate member, maybe with an escaped name
        k = draw(st.sampled_from(sorted(obj)))
        esc = "".join("\\u%04x" % ord(c) for c in k) if draw(st.booleans()) else k
        text = text[:-1] + f', "{esc}": {json.dumps(obj[k])}' + "}"
    if draw(st.integers(0, 3)) == 0:
        text = draw(st.sampled_from([" ", "\n", ""])) + text + draw(st.sampled_from([" ", "x", "", "}"]))
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates written raw: as escapes instead
        return json.dumps(obj).encode()


@settings(max_examples=400)
@given(claims_json())
def test_scanner_agrees_with_reference(raw):
    if reference(raw)[0] != "skip":
        _check(raw)


def test_depth_limit_matches_jsonutil():
    def nested(d):
        v = 1
        for _ in range(d):
            v = [v]
        return v
    for depth in (MAX_DEPTH - 2, MAX_DEPTH - 1, MAX_DEPTH):
        raw = json.dumps(dict(BASE, deep=nested(depth))).encode()
        verdict, _ = reference(raw)
        token = KEY.sign_raw(b'{"alg":"HS256","typ":"JWT"}', raw)
        try:
            Verifier(RING, verifier_uid=VERIFIER_UID).verify(token, now=NOW)
            got = "ok"
        except E.ClaimsError:
            got = "reject"
        assert got == verdict, depth


CONFUSABLE = [1.5, 1.0, 1e3, -1, 0, -0.0, 65535, 65536, U32, U32 + 1, 2 ** 63 - 1, 2 ** 63,
              -(2 ** 63), -(2 ** 63) - 1, True, False, None, "1", "", [], {}, [1], {"a": 1},
              NOW - 1, NOW, "sack", "launch", "AQ", "AQ==", "\u00e9"]


def _check(raw):
    verdict, fields = reference(raw)
    token = KEY.sign_raw(b'{"alg":"HS256","typ":"JWT"}', raw)
    try:
        cred = Verifier(RING, verifier_uid=VERIFIER_UID).verify(token, now=NOW)
    except E.CredentialError as e:
        assert verdict == "reject", f"refused ({e!r}) what the reference accepts: {raw!r}"
        return
    assert verdict == "ok", f"accepted what the reference refuses: {raw!r}"
    assert (cred.uid, cred.gid, cred.host, cred.cluster, cred.context, cred.iat, cred.exp,
            cred.ver, cred.ruid, cred.payload) == fields


def test_every_claim_with_every_confusable_value():
    for name in list(BASE) + ["sbcast", "net", "other"]:
        for v in CONFUSABLE:
            _check(json.dumps(dict(BASE, **{name: v})).encode())
        _check(json.dumps({k: v for k, v in BASE.items() if k != name}).encode())
    _check(json.dumps(dict(BASE, ruid=VERIFIER_UID)).encode())
