"""auth/slurm credentials: byte-identical to libjwt (Slurm's own library),
and verified with every rule of Slurm's decode_jwt()/copy_jwt_grants_to_cred()."""
import base64
import json
import os

import pytest
from hypothesis import given, settings, strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast.identity import Identity, identity_from_user
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring
from slurmauth_fast.jsonutil import dumps_compact
from slurmauth_fast.tokens import (PROTOCOL_VERSION, RPC_CONTEXTS, Credential, Verifier,
                                   create_credential, verify_credential)

import libjwt_oracle

_LJ = libjwt_oracle.load()
needs_libjwt = pytest.mark.skipif(_LJ is None, reason=libjwt_oracle.MISSING)

KEY = bytes(range(32))
K_B64URL = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
OTHER = os.urandom(24)
NOW = 1_700_000_000


def jwks_ring(*extra_keys, default_exp=None):
    key = {"kid": "k1", "kty": "oct", "alg": "HS256", "k": K_B64URL, "use": "default"}
    if default_exp is not None:
        key["exp"] = default_exp
    return Keyring.from_jwks(json.dumps({"keys": [key, *extra_keys]}), "test.jwks")


@pytest.fixture(params=["jwks", "key"])
def ring(request):
    return jwks_ring() if request.param == "jwks" else Keyring.from_key_bytes(KEY)


def kid_of(ring):
    return ring.default_key().kid


def forge(ring, header, claims):
    """Sign arbitrary header/claims JSON (str or dict) with the ring's default key."""
    h = header if isinstance(header, (bytes, str)) else json.dumps(header, separators=(",", ":"))
    c = claims if isinstance(claims, (bytes, str)) else json.dumps(claims, separators=(",", ":"))
    h = h.encode() if isinstance(h, str) else h
    c = c.encode() if isinstance(c, str) else c
    return ring.default_key().key.sign_raw(h, c)


def good_claims(**over):
    c = {"iat": NOW, "exp": NOW + 60, "ver": PROTOCOL_VERSION, "ruid": SLURM_AUTH_UID_ANY,
         "context": "auth", "uid": 1000, "gid": 1000, "host": "node1"}
    c.update(over)
    return {k: v for k, v in c.items() if v is not None}


HDR = {"alg": "HS256", "typ": "JWT"}


def verifier(ring, **kw):
    kw.setdefault("verifier_uid", 0)
    return Verifier(ring, **kw)


# ---- creation: byte-identical to libjwt ----------------------------------------

def oracle_token(ring, **kw):
    return _LJ.slurm_create_internal(KEY, kid=kid_of(ring), **kw)


@needs_libjwt
def test_identical_to_libjwt_basic(ring):
    ours = create_credential(ring, uid=1000, gid=100, host="node001", now=NOW)
    theirs = oracle_token(ring, context="auth", uid=1000, gid=100, r_uid=SLURM_AUTH_UID_ANY,
                          host="node001", iat=NOW, lifespan=60, version=PROTOCOL_VERSION)
    assert ours == theirs


@needs_libjwt
def test_identical_to_libjwt_all_claims(ring):
    payload = bytes(range(256)) + b"\x00\xff"
    ident = Identity(name="alice", gecos="Alice \"A\" \\ /\x01", dir="/home/alice", shell="/bin/sh",
                     groups={"users": 100, "wheel": 10, "\u00e9quipe": 4000000000})
    ours = create_credential(ring, uid=4294967295, gid=0, host="n\u00f6de-1\t", context="sack",
                             ruid=1234, payload=payload, ttl=300, cluster="clu\x1fster",
                             version=0x2A00, identity=ident, now=NOW)
    theirs = oracle_token(ring, context="sack", uid=4294967295, gid=0, r_uid=1234,
                          host="n\u00f6de-1\t", iat=NOW, lifespan=300, version=0x2A00,
                          cluster="clu\x1fster", data=payload,
                          extra=json.dumps({"id": ident.to_json()}))
    assert ours == theirs


@needs_libjwt
def test_identical_to_libjwt_gids_identity(ring):
    ident = Identity(name="bob", gecos="", dir="/", shell="/bin/false", gids=(5, 1, 3))
    ours = create_credential(ring, uid=1, gid=5, host="h", identity=ident, now=NOW)
    theirs = oracle_token(ring, context="auth", uid=1, gid=5, r_uid=SLURM_AUTH_UID_ANY, host="h",
                          iat=NOW, lifespan=60, version=PROTOCOL_VERSION,
                          extra=json.dumps({"id": ident.to_json()}))
    assert ours == theirs


@needs_libjwt
def test_identical_with_local_identity(ring):
    ident = identity_from_user(os.getuid(), os.getgid())
    ours = create_credential(ring, uid=os.getuid(), gid=os.getgid(), host="h", use_client_ids=True,
                             now=NOW, context="launch")
    assert ours == create_credential(ring, uid=os.getuid(), gid=os.getgid(), host="h",
                                     identity=ident, now=NOW, context="launch")
    theirs = oracle_token(ring, context="launch", uid=os.getuid(), gid=os.getgid(),
                          r_uid=SLURM_AUTH_UID_ANY, host="h", iat=NOW, lifespan=60,
                          version=PROTOCOL_VERSION, extra=json.dumps({"id": ident.to_json()}))
    assert ours == theirs


text = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=24)


@needs_libjwt
@settings(max_examples=60)
@given(uid=st.integers(0, 4294967295), gid=st.integers(0, 4294967295), host=text,
       cluster=st.none() | text, context=text.filter(bool), ruid=st.integers(0, 4294967295),
       payload=st.binary(max_size=80), ttl=st.integers(1, 10 ** 6),
       iat=st.integers(0, 2 ** 40), version=st.integers(0, 0xFFFF),
       groups=st.none() | st.dictionaries(text, st.integers(0, 4294967295), max_size=4))
def test_identical_to_libjwt_property(uid, gid, host, cluster, context, ruid, payload, ttl, iat,
                                      version, groups):
    ring = jwks_ring()
    ident = None if groups is None else Identity("u", "g", "/d", "/s", groups=groups)
    ours = create_credential(ring, uid=uid, gid=gid, host=host, context=context, ruid=ruid,
                             payload=payload, ttl=ttl, cluster=cluster, version=version,
                             identity=ident, now=iat)
    theirs = _LJ.slurm_create_internal(
        KEY, kid="k1", context=context, uid=uid, gid=gid, r_uid=ruid, host=host, iat=iat,
        lifespan=ttl, version=version, cluster=cluster, data=payload,
        extra=None if ident is None else json.dumps({"id": ident.to_json()}))
    assert ours == theirs


@needs_libjwt
def test_jansson_escaping_matches_libjwt():
    s = "".join(chr(c) for c in range(1, 128)) + "\u00e9\u20ac\U0001F600"
    theirs = _LJ.encode([("s", s)], key=KEY)
    claims = base64.urlsafe_b64decode(theirs.split(".")[1] + "==")
    assert dumps_compact({"s": s}) == claims


@needs_libjwt
def test_libjwt_decodes_ours(ring):
    tok = create_credential(ring, uid=7, gid=8, host="h", payload=b"\x01\x02\x03", cluster="c",
                            now=NOW, identity=Identity("n", "g", "d", "s", gids=(1, 2)))
    header, grants = _LJ.decode_full(tok, KEY)
    assert header == ({"alg": "HS256", "kid": "k1", "typ": "JWT"} if kid_of(ring)
                      else {"alg": "HS256", "typ": "JWT"})
    assert grants == {"iat": NOW, "exp": NOW + 60, "ver": PROTOCOL_VERSION, "ruid": 4294967295,
                      "context": "auth", "cluster": "c", "uid": 7, "gid": 8, "host": "h",
                      "payload": "AQID", "id": {"name": "n", "gecos": "g", "dir": "d",
                                                "shell": "s", "gids": [1, 2]}}
    assert _LJ.decode_full(tok, OTHER) is None


@needs_libjwt
def test_empty_payload_is_omitted_like_slurm(ring):
    tok = create_credential(ring, uid=1, gid=1, host="h", payload=b"", now=NOW)
    assert "payload" not in _LJ.decode_full(tok, KEY)[1]
    assert verifier(ring).verify(tok, now=NOW).payload is None


def test_default_host_is_short_hostname(ring):
    import socket
    cred = verifier(ring).verify(create_credential(ring, uid=1, gid=1))
    assert cred.host == socket.gethostname().split(".")[0]


@pytest.mark.parametrize("kw", [{"uid": -1}, {"uid": 4294967296}, {"uid": 1.0}, {"uid": True},
                                {"gid": "1"}, {"ruid": -1}, {"ttl": 0}, {"ttl": 1.5},
                                {"version": 70000}, {"context": ""}, {"host": "a\x00b"},
                                {"host": "\ud800"}, {"extra": {"uid": 3}},
                                {"extra": {"f": 1.5}}, {"extra": {"n": 2 ** 63}}, {"extra": {1: 2}},
                                {"cluster": "c\x00"}, {"cluster": "\udfff"},
                                {"context": "a\x00"}, {"host": 1.5}, {"now": 2 ** 63},
                                {"now": 2 ** 63 - 10}, {"now": -(2 ** 63) - 1},
                                {"extra": {"g": {"deep": ["\x00"]}}}])
def test_create_rejects_bad_arguments(ring, kw):
    args = dict(uid=1, gid=1, host="h", now=NOW)
    args.update(kw)
    with pytest.raises(E.BadArgumentError):
        create_credential(ring, **args)


# ---- verification: round trip and libjwt-minted tokens ------------------------

def test_round_trip_fields(ring):
    ident = Identity("alice", "A", "/home/a", "/bin/bash", groups={"a": 1, "b": 2})
    tok = create_credential(ring, uid=1001, gid=1002, host="n1", context="sack", ruid=0,
                            payload=b"\x02" + bytes(32), ttl=120, cluster="c1", identity=ident,
                            now=NOW)
    cred = verifier(ring).verify(tok, now=NOW + 120)
    assert cred == Credential(uid=1001, gid=1002, host="n1", cluster="c1", context="sack",
                              iat=NOW, exp=NOW + 120, ver=PROTOCOL_VERSION, ruid=0,
                              payload=b"\x02" + bytes(32), identity=ident, kid=kid_of(ring))
    with pytest.raises(E.ExpiredError):
        verifier(ring).verify(tok, now=NOW + 121)


@needs_libjwt
def test_verify_libjwt_minted_slurm_token(ring):
    ident = Identity("n", "g", "d", "s", groups={"x": 9})
    tok = oracle_token(ring, context="auth", uid=42, gid=43, r_uid=SLURM_AUTH_UID_ANY,
                       host="nodeA", iat=NOW, lifespan=60, version=0x2C00, cluster="clu",
                       data=b"\x01\x03\xf1", extra=json.dumps({"id": ident.to_json()}))
    cred = verifier(ring).verify(tok, now=NOW + 1)
    assert (cred.uid, cred.gid, cred.host, cred.cluster, cred.ver, cred.payload, cred.identity) == (
        42, 43, "nodeA", "clu", 0x2C00, b"\x01\x03\xf1", ident)


@needs_libjwt
@settings(max_examples=40)
@given(uid=st.integers(0, 4294967295), host=text, payload=st.binary(max_size=64))
def test_verify_libjwt_minted_property(uid, host, payload):
    ring = jwks_ring()
    tok = _LJ.slurm_create_internal(KEY, kid="k1", context="auth", uid=uid, gid=uid, r_uid=5,
                                       host=host, iat=NOW, lifespan=60, version=PROTOCOL_VERSION,
                                       data=payload)
    cred = Verifier(ring, verifier_uid=5).verify(tok, now=NOW)
    assert (cred.uid, cred.host, cred.payload) == (uid, host, payload or None)


def test_verify_credential_convenience(ring):
    tok = create_credential(ring, uid=1, gid=1, host="h")
    assert verify_credential(ring, tok, verifier_uid=0).uid == 1
    assert verify_credential(ring, tok.encode(), verifier_uid=0).uid == 1


def test_default_verifier_uid_is_getuid(ring):
    tok = create_credential(ring, uid=1, gid=1, host="h", ruid=os.getuid(), now=NOW)
    assert Verifier(ring).verify(tok, now=NOW).ruid == os.getuid()


# ---- verification: every rule, each with its exception --------------------------

def test_token_format_errors(ring):
    v = verifier(ring, max_len=400)
    good = forge(ring, HDR, good_claims())
    assert v.verify(good, now=NOW).uid == 1000
    with pytest.raises(E.TokenTooLargeError):
        v.verify(good + "A" * 400, now=NOW)
    with pytest.raises(E.SegmentError):
        v.verify(good.replace(".", "", 1), now=NOW)
    with pytest.raises(E.Base64Error):
        v.verify("!" + good[1:], now=NOW)
    with pytest.raises(E.HeaderError):
        v.verify(good + "\u00e9", now=NOW)
    with pytest.raises(E.SignatureError):
        v.verify(good[:-2] + ("AA" if good[-2:] != "AA" else "AE"), now=NOW)


def test_wrong_key_is_signature_error(ring):
    tok = create_credential(Keyring.from_key_bytes(OTHER), uid=1, gid=1, host="h", now=NOW)
    with pytest.raises(E.SignatureError):
        verifier(ring).verify(tok, now=NOW)


@pytest.mark.parametrize("header, exc", [
    ({"alg": "none", "typ": "JWT"}, E.AlgorithmError),
    ({"alg": "hs256", "typ": "JWT"}, E.AlgorithmError),
    ({"alg": "HS512", "typ": "JWT"}, E.AlgorithmError),
    ({"typ": "JWT"}, E.AlgorithmError),
    ({"alg": 1, "typ": "JWT"}, E.AlgorithmError),
    ({"alg": "HS256", "typ": "JWS"}, E.HeaderError),
    ({"alg": "HS256", "typ": 5}, E.HeaderError),
    ({"alg": "HS256", "kid": 5}, E.KeyIdError),
    ('{"alg":"HS256","alg":"HS256"}', E.HeaderError),
    ('{"alg":"HS256","x":1,"x":2}', E.HeaderError),
    ('["HS256"]', E.HeaderError),
    ('{"alg":"HS256"', E.HeaderError),
    ('{"alg":"HS256"} x', E.HeaderError),
])
def test_header_rules(ring, header, exc):
    with pytest.raises(exc):
        verifier(ring).verify(forge(ring, header, good_claims()), now=NOW)


def test_header_variants_accepted(ring):
    for header in ({"alg": "HS256"}, {"alg": "HS256", "typ": "jwt"},
                   '{ "alg" : "H\\u0053256", "x5u": {"a": [1, 2.5e3, null, true]} }'):
        assert verifier(ring).verify(forge(ring, header, good_claims()), now=NOW).uid == 1000


def test_kid_selects_key_in_jwks():
    second = {"kid": "k2", "kty": "oct", "alg": "HS256",
              "k": base64.b64encode(OTHER).decode()}
    ring = jwks_ring(second)
    v = verifier(ring)
    k2 = ring.lookup("k2")
    tok = k2.key.sign_raw(b'{"alg":"HS256","kid":"k2","typ":"JWT"}', json.dumps(good_claims()).encode())
    assert v.verify(tok, now=NOW).kid == "k2"
    # same token naming k1 does not verify; an unknown kid is a KeyIdError
    with pytest.raises(E.SignatureError):
        v.verify(k2.key.sign_raw(b'{"alg":"HS256","kid":"k1"}', json.dumps(good_claims()).encode()),
                 now=NOW)
    with pytest.raises(E.KeyIdError):
        v.verify(k2.key.sign_raw(b'{"alg":"HS256","kid":"K2"}', json.dumps(good_claims()).encode()),
                 now=NOW)
    # no kid: the default key
    assert v.verify(forge(ring, HDR, good_claims()), now=NOW).kid == "k1"


def test_slurm_key_ignores_kid_header():
    ring = Keyring.from_key_bytes(KEY)
    tok = forge(ring, {"alg": "HS256", "kid": "whatever"}, good_claims())
    assert verifier(ring).verify(tok, now=NOW).kid is None


def test_expired_key():
    ring = jwks_ring(default_exp=NOW + 10)
    tok = forge(ring, {"alg": "HS256", "kid": "k1"}, good_claims(exp=NOW + 100))
    assert verifier(ring).verify(tok, now=NOW + 10).uid == 1000
    with pytest.raises(E.KeyExpiredError):
        verifier(ring).verify(tok, now=NOW + 11)
    assert issubclass(E.KeyExpiredError, E.ExpiredError)


def test_exp_rules(ring):
    v = verifier(ring)
    assert v.verify(forge(ring, HDR, good_claims(exp=NOW)), now=NOW).exp == NOW
    with pytest.raises(E.ExpiredError):
        v.verify(forge(ring, HDR, good_claims(exp=NOW - 1)), now=NOW)
    with pytest.raises(E.ExpiredError):  # the real clock is long past NOW
        v.verify(forge(ring, HDR, good_claims(exp=NOW)))


def test_ruid_rules(ring):
    tok = forge(ring, HDR, good_claims(ruid=1234))
    assert Verifier(ring, verifier_uid=1234).verify(tok, now=NOW).ruid == 1234
    with pytest.raises(E.AudienceError):
        Verifier(ring, verifier_uid=0).verify(tok, now=NOW)
    any_tok = forge(ring, HDR, good_claims(ruid=SLURM_AUTH_UID_ANY))
    assert Verifier(ring, verifier_uid=77).verify(any_tok, now=NOW).ruid == SLURM_AUTH_UID_ANY


@pytest.mark.parametrize("claim", ["exp", "ruid", "iat", "uid", "gid", "host", "context"])
def test_required_claims(ring, claim):
    with pytest.raises(E.ClaimsError) as e:
        verifier(ring).verify(forge(ring, HDR, good_claims(**{claim: None})), now=NOW)
    assert claim in str(e.value)


@pytest.mark.parametrize("claim", ["iat", "exp", "ver", "ruid", "uid", "gid"])
@pytest.mark.parametrize("value", ["1.0", "1e3", "true", "null", '"1000"', "[1]", "{}"])
def test_integer_claims_reject_non_integers(ring, claim, value):
    claims = json.dumps(good_claims(**{claim: 12345}), separators=(",", ":"))
    claims = claims.replace(f'"{claim}":12345', f'"{claim}":{value}')
    with pytest.raises(E.ClaimsError) as e:
        verifier(ring).verify(forge(ring, HDR, claims), now=NOW)
    assert claim in str(e.value)


@pytest.mark.parametrize("claim, value", [("uid", -1), ("uid", 4294967296), ("gid", -5),
                                          ("gid", 2 ** 63), ("ruid", 4294967296), ("ver", 65536),
                                          ("iat", 2 ** 63), ("exp", -(2 ** 64))])
def test_integer_ranges(ring, claim, value):
    with pytest.raises(E.ClaimsError) as e:
        verifier(ring).verify(forge(ring, HDR, good_claims(**{claim: value})), now=NOW)
    assert claim in str(e.value)


def test_integer_range_edges(ring):
    tok = forge(ring, HDR, good_claims(uid=4294967295, gid=0, iat=-5))
    cred = verifier(ring).verify(tok, now=NOW)
    assert (cred.uid, cred.gid, cred.iat) == (4294967295, 0, -5)
    with pytest.raises(E.ClaimsError):
        verifier(ring).verify(forge(ring, HDR, json.dumps(good_claims()).replace('"gid": 1000', '"gid": -0')), now=NOW)


@pytest.mark.parametrize("claim", ["context", "host", "cluster", "payload"])
def test_string_claims_reject_non_strings(ring, claim):
    with pytest.raises(E.ClaimsError) as e:
        verifier(ring).verify(forge(ring, HDR, good_claims(**{claim: 5})), now=NOW)
    assert claim in str(e.value)


def test_context_rules(ring):
    rpc = verifier(ring)
    for ctx in RPC_CONTEXTS:
        assert rpc.verify(forge(ring, HDR, good_claims(context=ctx)), now=NOW).context == ctx
    for ctx in ("launch", "sbcast", "net", "Auth", "other"):
        with pytest.raises(E.ContextError):
            rpc.verify(forge(ring, HDR, good_claims(context=ctx)), now=NOW)
    launch_tok = forge(ring, HDR, good_claims(context="launch"))
    assert verifier(ring, contexts=("launch",)).verify(launch_tok, now=NOW).context == "launch"
    with pytest.raises(E.ContextError):
        verifier(ring, contexts=("launch",)).verify(forge(ring, HDR, good_claims()), now=NOW)
    assert rpc.verify(launch_tok, now=NOW, context="launch").context == "launch"
    with pytest.raises(E.ContextError):
        rpc.verify(forge(ring, HDR, good_claims(context="sack")), now=NOW, context=("auth",))
    with pytest.raises(E.BadArgumentError):
        Verifier(ring, contexts=("bogus",))


def test_sbcast_and_net_grants(ring):
    for ctx, name in (("sbcast", "sbcast"), ("net", "net")):
        grant = {"a": [1, {"b": "c"}]}
        tok = forge(ring, HDR, good_claims(context=ctx, **{name: grant}))
        cred = verifier(ring, contexts=(ctx,)).verify(tok, now=NOW)
        assert getattr(cred, name) == grant
        with pytest.raises(E.ClaimsError):
            verifier(ring, contexts=(ctx,)).verify(
                forge(ring, HDR, good_claims(context=ctx, **{name: [1]})), now=NOW)


@pytest.mark.parametrize("payload, ok", [("AQID", b"\x01\x02\x03"), ("AQ==", b"\x01"),
                                         ("AQI=", b"\x01\x02"), ("", None),
                                         ("AQ", None), ("AQI", None), ("A-__", None),
                                         ("AR==", None), ("AQ==AQ==", None), ("A\\/8=", b"\x03\xff")])
def test_payload_decode(ring, payload, ok):
    claims = json.dumps(good_claims(payload="PAYLOAD")).replace("PAYLOAD", payload)
    tok = forge(ring, HDR, claims)
    if ok is None:
        with pytest.raises(E.PayloadError):
            verifier(ring).verify(tok, now=NOW)
    else:
        assert verifier(ring).verify(tok, now=NOW).payload == ok


def test_duplicate_claims_rejected(ring):
    base = json.dumps(good_claims(), separators=(",", ":"))[:-1]
    for dup in (',"uid":1', ',"u\\u0069d":1', ',"zz":1,"zz":2', ',"z\\u007a":1,"zz":2'):
        with pytest.raises(E.ClaimsError):
            verifier(ring).verify(forge(ring, HDR, base + dup + "}"), now=NOW)


def test_escaped_claim_names_are_the_claims(ring):
    claims = json.dumps(good_claims(uid=None), separators=(",", ":"))[:-1] + ',"u\\u0069d":77}'
    assert verifier(ring).verify(forge(ring, HDR, claims), now=NOW).uid == 77


def test_unknown_claims_skipped(ring):
    claims = good_claims(zzz={"a": [1, {"b": None, "c": [True, False, -1.5e-3]}]}, sun="x", aud=[])
    assert verifier(ring).verify(forge(ring, HDR, claims), now=NOW).uid == 1000


def test_structure_errors(ring):
    v = verifier(ring)
    deep = good_claims()
    nested = 1
    for _ in range(20):
        nested = [nested]
    deep["deep"] = nested
    for claims in (json.dumps(deep), "[1]", json.dumps(good_claims()) + "x",
                   json.dumps(good_claims())[:-1], '{"iat":01}', "{}", " "):
        with pytest.raises(E.ClaimsError):
            v.verify(forge(ring, HDR, claims), now=NOW)
    many = good_claims(**{f"x{i}": i for i in range(40)})
    with pytest.raises(E.ClaimsError):
        v.verify(forge(ring, HDR, many), now=NOW)
    assert v.verify(forge(ring, HDR, good_claims(**{f"x{i}": i for i in range(30)})), now=NOW)


@pytest.mark.parametrize("raw, host", [
    (b'"n\\u00e9"', "n\u00e9"), (b'"\\ud83d\\ude00"', "\U0001F600"), ('"n\u00e9"'.encode(), "n\u00e9"),
    (b'"a\\"b\\\\c\\/d\\b\\f\\n\\r\\t"', 'a"b\\c/d\b\f\n\r\t'),
])
def test_string_escapes(ring, raw, host):
    claims = json.dumps(good_claims(host="HOST")).encode().replace(b'"HOST"', raw)
    assert verifier(ring).verify(forge(ring, HDR, claims), now=NOW).host == host


@pytest.mark.parametrize("raw", [b'"\\ud83d"', b'"\\ude00"', b'"\\u0000"', b'"\x01"', b'"\xff"',
                                 b'"\xc0\xaf"', b'"\xed\xa0\x80"', b'"\\x"', b'"\\u12"', b'"abc'])
def test_bad_strings(ring, raw):
    claims = json.dumps(good_claims(host="HOST")).encode().replace(b'"HOST"', raw)
    with pytest.raises(E.ClaimsError):
        verifier(ring).verify(forge(ring, HDR, claims), now=NOW)


def test_identity_claim(ring):
    ident = Identity("a", "b", "c", "d", groups={"g": 1})
    cred = verifier(ring).verify(forge(ring, HDR, good_claims(id=ident.to_json())), now=NOW)
    assert cred.identity == ident
    for bad in ([1], {"name": "a"}, dict(ident.to_json(), groups={"g": 1.5}),
                dict(ident.to_json(), gids=[1])):
        with pytest.raises(E.IdentityError):
            verifier(ring).verify(forge(ring, HDR, good_claims(id=bad)), now=NOW)
    dup = json.dumps(good_claims(id=ident.to_json())).replace('"name": "a"', '"name": "a", "name": "b"')
    with pytest.raises(E.IdentityError):
        verifier(ring).verify(forge(ring, HDR, dup), now=NOW)


def test_every_rejection_is_a_credential_error():
    for exc in (E.IdentityError, E.ContextError, E.PayloadError, E.KeyExpiredError):
        assert issubclass(exc, E.CredentialError)
        assert exc.slurm_errno == E.ESLURM_AUTH_CRED_INVALID


# ---- batch ----------------------------------------------------------------------

def test_batch_matches_single(ring):
    v = verifier(ring, max_len=2000)
    toks = [create_credential(ring, uid=i, gid=i, host=f"h{i}", payload=bytes([i]) * i, now=NOW)
            for i in range(50)]
    bad = [forge(ring, HDR, good_claims(uid=-1)), "x.y", "a" * 3000, toks[0][:-1] + "A",
           forge(ring, HDR, good_claims(context="launch")), "\u00e9",
           forge(ring, HDR, good_claims(id=[1])), b"", bytearray(toks[1].encode())]
    results = v.verify_batch(toks + bad, now=NOW)
    for tok, res in zip(toks + bad, results):
        try:
            single = v.verify(tok, now=NOW)
        except E.CredentialError as e:
            assert type(res) is type(e) and str(res) == str(e)
        else:
            assert res == single
    assert [r.uid for r in results[:50]] == list(range(50))
    assert v.verify_batch([]) == []


def test_batch_identity_and_expiry(ring):
    v = verifier(ring)
    ident = Identity("a", "b", "c", "d", gids=(1,))
    toks = [create_credential(ring, uid=1, gid=1, host="h", identity=ident, now=NOW)]
    assert v.verify_batch(toks, now=NOW)[0].identity == ident
    assert isinstance(v.verify_batch(toks, now=NOW + 61)[0], E.ExpiredError)


# ---- the canonical-header fast path agrees with the general header path ----------

def test_canonical_header_selects_same_key_as_parsed_header():
    second = {"kid": "k2", "kty": "oct", "alg": "HS256", "k": base64.b64encode(OTHER).decode(),
              "exp": NOW + 5}
    ring = jwks_ring(second)
    v = verifier(ring)
    k2 = ring.lookup("k2").key
    claims = json.dumps(good_claims(exp=NOW + 100)).encode()
    canonical = b'{"alg":"HS256","kid":"k2","typ":"JWT"}'
    spaced = b'{ "typ": "JWT", "kid": "k2", "alg": "HS256" }'
    for hdr in (canonical, spaced):
        assert v.verify(k2.sign_raw(hdr, claims), now=NOW).kid == "k2"
        with pytest.raises(E.KeyExpiredError):
            v.verify(k2.sign_raw(hdr, claims), now=NOW + 6)
        # a header naming k2, signed with k1: the MAC with k2 fails
        with pytest.raises(E.SignatureError):
            v.verify(ring.lookup("k1").key.sign_raw(hdr, claims), now=NOW)
    # slurm.key's header (no kid) in a jwks keyring: the default key
    assert v.verify(forge(ring, b'{"alg":"HS256","typ":"JWT"}', claims), now=NOW).kid == "k1"


def test_now_must_be_a_non_negative_int(ring):
    tok = create_credential(ring, uid=1, gid=1, host="h", now=NOW)
    for bad in (-1, 1.5, "1"):
        with pytest.raises(E.BadArgumentError):
            verifier(ring).verify(tok, now=bad)
        with pytest.raises(E.BadArgumentError):
            verifier(ring).verify_batch([tok], now=bad)


def test_large_strings_use_the_general_layout(ring):
    host = "h" * 3_000_000  # beyond the 21-bit length shape
    v = verifier(ring, max_len=10_000_000)
    tok = create_credential(ring, uid=1, gid=1, host=host, cluster="c", now=NOW)
    cred = v.verify(tok, now=NOW)
    assert cred.host == host and cred.cluster == "c" and cred.payload is None
    small = create_credential(ring, uid=1, gid=1, host="x", now=NOW, payload=b"p")
    assert (v.verify(small, now=NOW).host, v.verify(small, now=NOW).payload) == ("x", b"p")


# ---- the MAC is computed while the claims are scanned: its verdict still comes first

BAD_CLAIMS = [
    ("not json", "{\"uid\":"),                                         # scan error
    ("duplicate", "{\"uid\":1,\"uid\":1}"),                             # scan error
    ("expired", None),                                                  # claim rule
    ("bad payload", json.dumps(good_claims(payload="not base64!"))),   # payload decode
    ("wrong context", json.dumps(good_claims(context="launch"))),       # context rule
]


@pytest.mark.parametrize("name, claims", BAD_CLAIMS, ids=[n for n, _ in BAD_CLAIMS])
def test_a_forged_token_is_a_signature_error_whatever_its_claims(ring, name, claims):
    claims = claims if claims is not None else json.dumps(good_claims(exp=NOW - 1))
    v = verifier(ring)
    real = forge(ring, HDR, claims)
    with pytest.raises(E.CredentialError) as honest:
        v.verify(real, now=NOW)                # signed: the claims' own error
    assert not isinstance(honest.value, E.SignatureError)
    forged = forge(Keyring.from_key_bytes(OTHER), HDR, claims)
    with pytest.raises(E.SignatureError):
        v.verify(forged, now=NOW)
    head, body, sig = forged.split(".")
    with pytest.raises(E.SignatureError):      # a tag that is not even 32 bytes
        v.verify(f"{head}.{body}.{sig[:-1]}", now=NOW)
    (got,) = v.verify_batch([forged], now=NOW)
    assert isinstance(got, E.SignatureError)


def test_a_forged_token_leaves_no_result_behind():
    """A forged token's claims are scanned while its MAC is computed, but the
    result area is cleared when the MAC does not match."""
    from slurmauth_fast._core import ffi, lib
    ring = Keyring.from_key_bytes(KEY)
    v = verifier(ring)
    forged = forge(Keyring.from_key_bytes(OTHER), HDR, good_claims(uid=4242, gid=4243)).encode()
    scratch = ffi.new("uint8_t[]", lib.sc_scratch_need(len(forged)))
    rc = lib.sc_verify(ring._state.ks, v._policy, forged, len(forged), NOW, scratch, len(scratch))
    assert rc == lib.SA_E_BAD_SIGNATURE
    res = ffi.cast("sc_result *", scratch)
    assert res.err_claim == -1 and res.uid == 0 and res.gid == 0 and res.host_len == 0


@pytest.mark.parametrize("impl", ["portable", "sha-ni"])
def test_verify_across_block_counts_under_each_sha256(impl):
    """sc_verify computes the MAC in pieces while it scans the claims; tokens
    whose signing input spans every block count and both padding cases verify
    under each SHA-256 implementation, and one wrong tag bit is refused."""
    from slurmauth_fast._core import lib
    code = {"portable": lib.SA_SHA256_PORTABLE, "sha-ni": lib.SA_SHA256_SHANI}[impl]
    if code == lib.SA_SHA256_SHANI and not lib.sa_sha256_shani_available():
        pytest.skip("this CPU has no SHA-NI")
    ring = Keyring.from_key_bytes(KEY)
    v = verifier(ring)
    assert lib.sa_sha256_select(code) == code
    try:
        for n in range(0, 420, 7):
            tok = create_credential(ring, uid=n, gid=1, host="h" * (1 + n % 5), payload=bytes(n),
                                    now=NOW)
            assert v.verify(tok, now=NOW).uid == n
            head, _, sig = tok.rpartition(".")
            bad = head + "." + ("B" if sig[0] == "A" else "A") + sig[1:]
            with pytest.raises(E.SignatureError):
                v.verify(bad, now=NOW)
    finally:
        lib.sa_sha256_select(lib.SA_SHA256_AUTO)


def test_fields_are_never_mixed_up_between_tokens_of_one_layout():
    """The fast path reuses the fields of the last credential of the same
    layout (tokens._Layout.cache): tokens with the same lengths that differ
    only in host or cluster, or only in iat/exp/payload, interleaved, from
    several threads, each get their own (an empty cluster stays "", an absent
    one None)."""
    import threading
    ring = Keyring.from_key_bytes(KEY)
    v = verifier(ring)
    names = [("nodeA1", "c1"), ("nodeB2", "c2"), ("nodeA1", "c2"), ("nodeB2", "c1")]
    toks = [create_credential(ring, uid=7, gid=7, host=h, cluster=c, now=NOW)
            for h, c in names]
    other = [create_credential(ring, uid=7, gid=7, host="nodeA1", cluster="c1", now=NOW - i,
                               payload=bytes([i]) * 32) for i in range(4)]
    for _ in range(2):
        for i, tok in enumerate(other):
            cred = v.verify(tok, now=NOW)
            assert (cred.iat, cred.exp, cred.payload) == (NOW - i, NOW - i + 60, bytes([i]) * 32)
        assert [c.payload for c in v.verify_batch(other, now=NOW)] == [bytes([i]) * 32 for i in range(4)]
    empty = create_credential(ring, uid=9, gid=9, host="nodeA1", cluster="", now=NOW)
    absent = create_credential(ring, uid=8, gid=8, host="nodeA1", now=NOW)
    for _ in range(3):
        for i, tok in enumerate(toks):
            cred = v.verify(tok, now=NOW)
            assert (cred.uid, cred.host, cred.cluster) == (7, *names[i])
    assert v.verify(empty, now=NOW).cluster == "" and v.verify(absent, now=NOW).cluster is None
    assert [(c.host, c.cluster) for c in v.verify_batch(toks * 3, now=NOW)] == names * 3
    bad = []

    def run(k):
        for n in range(3000):
            i = (n + k) % 4
            c = v.verify(toks[i], now=NOW)
            if (c.host, c.cluster) != names[i]:
                bad.append((i, c.host, c.cluster))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert bad == []


def test_field_cache_is_bounded_and_drops_entries_of_an_old_keyring_state(monkeypatch):
    from slurmauth_fast import tokens as T
    monkeypatch.setattr(T, "_CACHE_MAX", 2)
    ring = Keyring.from_key_bytes(KEY)
    v = verifier(ring)
    toks = [create_credential(ring, uid=100 + i, gid=7, host="hostX", cluster="cc", now=NOW)
            for i in range(5)]
    for _ in range(3):
        assert [v.verify(t, now=NOW).uid for t in toks] == [100 + i for i in range(5)]
    lay = T._last[0]
    assert len(lay.cache) == 2                       # full: the others are read in full
    old = ring._state
    ring._state = T.Keyring.from_key_bytes(KEY)._state  # as reload() swaps it
    assert [v.verify(t, now=NOW).uid for t in toks[:2]] == [100, 101]
    assert all(entry[0] is not old for entry in lay.cache.values())
