"""Credential creation in C (csrc/create.c): byte for byte what the previous
Python writer (tests/reference_create.py) and libjwt (Slurm's library) write,
the same errors for the same bad arguments, and create_many == many
create_credential calls."""
import base64
import json
import os
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from slurmauth_fast._bindings import create as native
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.identity import Identity
from slurmauth_fast.jsonutil import dumps_compact
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring
from slurmauth_fast.tokens import PROTOCOL_VERSION, Verifier, create_credential, create_many

import libjwt_oracle
from clock import c_time_floor
from reference_create import reference_create_credential

_LJ = libjwt_oracle.load()
needs_libjwt = pytest.mark.skipif(_LJ is None, reason=libjwt_oracle.MISSING)

KEY = os.urandom(1024)
NOW = 1_700_000_000


def jwks_ring(kid="k1"):
    k = base64.urlsafe_b64encode(KEY).rstrip(b"=").decode()
    return Keyring.from_jwks(json.dumps({"keys": [{"kid": kid, "kty": "oct", "alg": "HS256",
                                                   "k": k}]}))


RINGS = {"key": Keyring.from_key_bytes(KEY), "jwks": jwks_ring()}


@pytest.fixture(params=sorted(RINGS))
def ring(request):
    return RINGS[request.param]


# Strings jansson can hold: any code point but NUL and surrogates; the control
# characters, '"', '\\', '/', DEL and non-ASCII are the interesting ones.
chars = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")
text = st.one_of(st.text(chars, max_size=24),
                 st.text(st.sampled_from("\x01\x08\t\n\x0c\r\x1f\"\\/\x7f\u00e9\u2028\U0001F600a"),
                         max_size=12))
u32 = st.integers(0, 4294967295)
i64 = st.integers(-(2 ** 62), 2 ** 62)
json_scalar = st.one_of(st.none(), st.booleans(), st.integers(-(2 ** 63), 2 ** 63 - 1), text)
json_value = st.recursive(json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(text, inner, max_size=4)), max_leaves=12)
identities = st.one_of(
    st.none(),
    st.builds(Identity, name=text, gecos=text, dir=text, shell=text,
              groups=st.dictionaries(text, u32, max_size=5)),
    st.builds(Identity, name=text, gecos=text, dir=text, shell=text,
              gids=st.lists(u32, max_size=5).map(tuple)))
extras = st.one_of(st.none(), st.dictionaries(
    st.one_of(st.sampled_from(["id", "sbcast", "net", "a", "zz", "hosts", "\u00e9"]), text),
    json_value, max_size=4).filter(
        lambda d: not set(d) & {"iat", "exp", "ver", "ruid", "uid", "gid", "context", "cluster",
                                "host", "payload"}))

claims = dict(uid=u32, gid=u32, host=text, context=st.one_of(st.sampled_from(
    ["auth", "sack", "launch", "sbcast", "net"]), text.filter(bool)), ruid=u32,
    payload=st.one_of(st.none(), st.binary(max_size=80)), ttl=st.integers(1, 10 ** 6),
    cluster=st.one_of(st.none(), text), version=st.integers(0, 0xFFFF), now=i64)


def both(ring, **kw):
    """Ours and the reference writer's token (or exception) for kw."""
    out = []
    for fn in (create_credential, reference_create_credential):
        try:
            out.append(fn(ring, **kw))
        except Exception as e:  # noqa: BLE001 - compared below
            out.append((type(e), str(e)))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kw=st.fixed_dictionaries(claims), identity=identities, extra=extras,
       which=st.sampled_from(sorted(RINGS)))
def test_same_bytes_as_python_writer(kw, identity, extra, which):
    ours, ref = both(RINGS[which], identity=identity, extra=extra, **kw)
    assert ours == ref


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kid=text.filter(bool), kw=st.fixed_dictionaries(claims))
def test_same_bytes_any_jwks_kid(kid, kw):
    ring = jwks_ring(kid)
    ours, ref = both(ring, **kw)
    assert ours == ref
    hdr = json.loads(base64.urlsafe_b64decode(ours.split(".")[0] + "=="))
    assert hdr["kid"] == kid


@needs_libjwt
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(kw=st.fixed_dictionaries(claims), identity=identities,
       which=st.sampled_from(sorted(RINGS)))
def test_same_bytes_as_libjwt(kw, identity, which):
    ring = RINGS[which]
    ours = create_credential(ring, identity=identity, **kw)
    theirs = _LJ.slurm_create_internal(
        KEY, kid=ring.default_key().kid, context=kw["context"], uid=kw["uid"], gid=kw["gid"],
        r_uid=kw["ruid"], host=kw["host"], iat=kw["now"], lifespan=kw["ttl"],
        version=kw["version"], cluster=kw["cluster"], data=kw["payload"],
        extra=None if identity is None else json.dumps({"id": identity.to_json()}))
    assert ours == theirs


@needs_libjwt
def test_every_escape_as_libjwt(ring):
    s = "".join(chr(c) for c in range(1, 128)) + "\u00e9\u20ac\U0001F600\u2028"
    ours = create_credential(ring, uid=1, gid=2, host=s, cluster=s, context=s, now=NOW)
    theirs = _LJ.slurm_create_internal(KEY, kid=ring.default_key().kid, context=s, uid=1, gid=2,
                                       r_uid=SLURM_AUTH_UID_ANY, host=s, iat=NOW, lifespan=60,
                                       version=PROTOCOL_VERSION, cluster=s)
    assert ours == theirs


BAD = [
    dict(uid=-1), dict(uid=True), dict(gid=2 ** 32), dict(ruid=1.0), dict(ttl=0), dict(ttl="1"),
    dict(version=0x10000), dict(context=""), dict(context=5), dict(now=1.5),
    dict(now=2 ** 63), dict(now=2 ** 63 - 5, ttl=10), dict(now=-(2 ** 63) - 1),
    dict(host="a\x00b"), dict(host="\ud800"), dict(host=b"bytes"), dict(host=5),
    dict(cluster="c\x00"), dict(cluster="\udfff"), dict(cluster=7), dict(cluster=["x", 1]),
    dict(context="a\x00"), dict(context="\ud800x"),
    dict(context="a\x00", host="\ud800"), dict(host="\ud800", cluster="\x00"),
    dict(extra={"uid": 1}), dict(extra={"x": 1.5}), dict(extra={"x": "\x00"}),
    dict(extra={"id": "\x00", "a": "\ud800"}), dict(extra={1: 2}), dict(extra={"\x00": 1}),
    dict(payload="str"), dict(payload=3), dict(payload=bytearray(b"ab")),
    dict(payload=memoryview(b"xyz")), dict(payload=b""), dict(payload=0),
    dict(identity=Identity("n\x00", "g", "d", "s", gids=())),
    dict(extra={"id": {"x": 1}}, identity=Identity("n", "g", "d", "s", gids=(1,))),
    dict(host=None), dict(cluster=None, host="x" * 5000), dict(payload=os.urandom(20000)),
]


@pytest.mark.parametrize("over", BAD, ids=[repr(b)[:60] for b in BAD])
def test_same_errors_and_edge_cases(ring, over):
    kw = dict(uid=1, gid=2, host="h", now=NOW)
    kw.update(over)
    ours, ref = both(ring, **kw)
    assert ours == ref


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(items=st.lists(st.fixed_dictionaries(claims), max_size=12),
       which=st.sampled_from(sorted(RINGS)))
def test_create_many_is_many_create_credential(items, which):
    ring = RINGS[which]
    assert create_many(ring, items) == [create_credential(ring, **kw) for kw in items]


def test_create_many_mixed_and_errors(ring):
    ident = Identity("n", "g", "/d", "/s", groups={"b": 2, "a": 1})
    items = [dict(uid=1, gid=1, host="h", now=NOW),
             dict(uid=2, gid=2, host="h" * 3000, now=NOW, identity=ident, extra={"z": [1]}),
             dict(uid=3, gid=3, host="x", now=NOW, payload=os.urandom(5000))]
    assert create_many(ring, items) == [create_credential(ring, **kw) for kw in items]
    assert create_many(ring, []) == []
    # longer than the first output estimate (every byte escaped to six): C asks for more room
    long = [dict(uid=i, gid=i, host="\x01" * 1500, now=NOW) for i in range(5)]
    assert create_many(ring, long) == [create_credential(ring, **kw) for kw in long]
    # odd and even counts: tags are computed two at a time
    for n in (1, 2, 3, 4, 7):
        few = [dict(uid=i, gid=i, host=f"n{i}", now=NOW + i) for i in range(n)]
        assert create_many(ring, iter(few)) == [create_credential(ring, **kw) for kw in few]
    bad = items + [dict(uid=4, gid=4, host="\x00", now=NOW)]
    with pytest.raises(type(_error(ring, bad[-1]))) as got:
        create_many(ring, bad)
    assert str(got.value) == str(_error(ring, bad[-1]))


def _error(ring, kw):
    try:
        reference_create_credential(ring, **kw)
    except Exception as e:  # noqa: BLE001
        return e
    raise AssertionError("no error")


def test_created_tokens_verify(ring):
    tok = create_credential(ring, uid=5, gid=6, host="n1", cluster="c", payload=b"\x01" * 33)
    cred = Verifier(ring, verifier_uid=0).verify(tok)
    assert (cred.uid, cred.gid, cred.host, cred.cluster, cred.payload) == (5, 6, "n1", "c",
                                                                        b"\x01" * 33)


# ---- the C entry points directly ----------------------------------------------

def c_claims(context=b"auth", cluster=None, host=b"h", payload=None, members=None):
    out = ffi.new("char[]", 65536)
    n = ffi.new("size_t *")
    rc = lib.sa_create_claims(1, 2, 3, 4, 5, 6, context, len(context),
                              ffi.NULL if cluster is None else cluster,
                              0 if cluster is None else len(cluster),
                              ffi.NULL if host is None else host, 0 if host is None else len(host),
                              ffi.NULL if payload is None else payload,
                              0 if payload is None else len(payload),
                              ffi.NULL if members is None else members,
                              0 if members is None else len(members), out, 65536, n)
    return rc, (ffi.unpack(out, n[0]) if rc == 0 else None)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(context=text.filter(bool), cluster=st.one_of(st.none(), text), host=text,
       payload=st.binary(max_size=40), extra=extras)
def test_claims_writer_is_dumps_compact(context, cluster, host, payload, extra):
    extra = {k: v for k, v in (extra or {}).items() if k != "id"}
    want = {"iat": 1, "exp": 2, "ver": 3, "ruid": 4, "uid": 5, "gid": 6, "context": context,
            "host": host, **extra}
    if cluster is not None:
        want["cluster"] = cluster
    if payload:
        want["payload"] = base64.b64encode(payload).decode()
    members = native.members([(k.encode(), dumps_compact(v)) for k, v in extra.items()])
    rc, got = c_claims(context.encode(), None if cluster is None else cluster.encode(),
                       host.encode(), payload or None, members or None)
    assert rc == 0 and got == dumps_compact(want)


@pytest.mark.parametrize("raw", [b"\xff", b"\xc0\x80", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                                 b"\xe2\x82", b"a\x00b", b"\xf0\x9f\x98"])
def test_c_refuses_nul_and_invalid_utf8(raw):
    assert c_claims(host=raw)[0] == lib.SA_E_ARG
    assert c_claims(context=raw)[0] == lib.SA_E_ARG
    assert c_claims(members=raw + b"\0" + b"1\0")[0] == lib.SA_E_ARG


@pytest.mark.parametrize("members", [b"b\x001\x00a\x001\x00",      # out of order
                                     b"a\x001\x00a\x002\x00",      # twice
                                     b"host\x00\"x\"\x00",          # a claim written from args
                                     b"a\x001", b"a"])              # not terminated
def test_c_refuses_bad_members(members):
    assert c_claims(members=members)[0] == lib.SA_E_ARG


def test_c_host_as_member_and_buffer_sizing():
    rc, got = c_claims(host=None, members=b"host\x005\x00")
    assert rc == 0 and b'"host":5' in got
    ring = RINGS["key"]
    out = ffi.new("char[]", 10)
    args = (ring.snapshot().keyset, NOW, 0, 60, 1, 2, 3, 4, b"auth", 4, ffi.NULL, 0, b"h", 1,
            ffi.NULL, 0, ffi.NULL, 0)
    need = lib.sa_create_credential(*args, out, 10)
    assert need > 10
    big = ffi.new("char[]", need)
    assert lib.sa_create_credential(*args, big, need) == need
    assert ffi.unpack(big, need).decode() == create_credential(ring, uid=3, gid=4, ruid=2,
                                                               version=1, host="h", now=NOW)


@pytest.mark.parametrize("ints", [dict(uid=-1), dict(gid=2 ** 32), dict(ruid=2 ** 32),
                                  dict(ver=0x10000), dict(ver=-1), dict(ttl=0),
                                  dict(iat=2 ** 63 - 10, ttl=10)])
def test_c_refuses_out_of_range(ints):
    a = dict(iat=NOW, ttl=60, ver=1, ruid=2, uid=3, gid=4)
    a.update(ints)
    out = ffi.new("char[]", 1024)
    rc = lib.sa_create_credential(RINGS["key"].snapshot().keyset, a["iat"], 0, a["ttl"], a["ver"],
                                  a["ruid"], a["uid"], a["gid"], b"auth", 4, ffi.NULL, 0,
                                  b"h", 1, ffi.NULL, 0, ffi.NULL, 0, out, 1024)
    assert rc == -lib.SA_E_ARG


def test_c_clock():
    out = ffi.new("char[]", 1024)
    before = c_time_floor()
    n = lib.sa_create_credential(RINGS["key"].snapshot().keyset, 0, 1, 60, 1, 2, 3, 4, b"auth", 4,
                                 ffi.NULL, 0, b"h", 1, ffi.NULL, 0, ffi.NULL, 0, out, 1024)
    cred = Verifier(RINGS["key"], verifier_uid=2).verify(ffi.unpack(out, n))
    assert before <= cred.iat <= int(time.time()) and cred.exp == cred.iat + 60
