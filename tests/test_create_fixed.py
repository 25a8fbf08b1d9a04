"""create_credential's fast path: the constant claims written once by C
(sa_create_fixed_init) and one short call per credential
(sa_create_fixed_now/_at), kept in a bounded cache and matched by identity
for the previous call. The tokens must be byte for byte those of the general
C call (sa_create_credential) and of the reference writer, and the errors
unchanged, whatever the cache holds."""
import enum
import os
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from slurmauth_fast import credential
from slurmauth_fast._bindings import create as native
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast._bounded import BoundedCache
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import PROTOCOL_VERSION, Verifier, create_credential, create_many

from clock import c_time_floor
from reference_create import reference_create_credential
from test_create_native import RINGS, both, claims, text

NOW = 1_700_000_000
KS = RINGS["key"].snapshot().keyset


def enc(s):
    return None if s is None else s.encode("utf-8", "surrogatepass")


def general(ks, now, ttl, ver, ruid, uid, gid, context, cluster, host, payload):
    """The general C call's token, or None when C refuses."""
    try:
        return native.credential(ks, now, False, ttl, ver, ruid, uid, gid, context, cluster, host,
                                 payload or None, None)
    except (native.Refused, OverflowError):
        return None


def fast(ks, now, ttl, ver, ruid, uid, gid, context, cluster, host, payload):
    """The fixed-claims C call's token, or None when C refuses."""
    t = native.fixed(ttl, ver, ruid, context, cluster, host)
    if t is None:
        return None
    try:
        return native.fixed_credential(ks, t, now, uid, gid, payload)
    except (native.Refused, OverflowError):
        return None


maybe_bad_int = st.one_of(st.integers(0, 2 ** 32 - 1), st.integers(-(2 ** 64), 2 ** 64))
raw = st.one_of(text.map(lambda s: s.encode()), st.binary(max_size=20))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(now=st.integers(-(2 ** 63), 2 ** 63 - 1), ttl=st.one_of(st.integers(1, 10 ** 6), maybe_bad_int),
       ver=st.one_of(st.integers(0, 0xFFFF), maybe_bad_int), ruid=maybe_bad_int,
       uid=maybe_bad_int, gid=maybe_bad_int, context=raw.filter(bool),
       cluster=st.one_of(st.none(), raw), host=raw,
       payload=st.one_of(st.none(), st.binary(max_size=2000)), which=st.sampled_from(sorted(RINGS)))
def test_fixed_call_is_the_general_call(now, ttl, ver, ruid, uid, gid, context, cluster, host,
                                        payload, which):
    """Same bytes, or refused by both (ranges, NUL, invalid UTF-8, overflow)."""
    ks = RINGS[which].snapshot().keyset
    args = (ks, now, ttl, ver, ruid, uid, gid, context, cluster, host, payload)
    assert fast(*args) == general(*args)


def test_fixed_clock_and_one_template_for_many_calls():
    t = native.fixed(60, PROTOCOL_VERSION, 7, b"auth", b"c1", b"n1")
    before = c_time_floor()
    v = Verifier(RINGS["key"], verifier_uid=7)
    for uid in (0, 1, 4294967295):
        cred = v.verify(native.fixed_credential(KS, t, None, uid, uid, b"\x01" * 33))
        assert before <= cred.iat <= int(time.time()) and cred.exp == cred.iat + 60
        assert (cred.uid, cred.host, cred.cluster, cred.payload) == (uid, "n1", "c1", b"\x01" * 33)


def test_fixed_init_refusals_and_sizes():
    def init(ttl=60, ver=1, ruid=2, context=b"auth", cluster=None, host=b"h"):
        t = ffi.new("sa_create_fixed *")
        rc = lib.sa_create_fixed_init(t, ttl, ver, ruid, context, len(context),
                                      ffi.NULL if cluster is None else cluster,
                                      0 if cluster is None else len(cluster),
                                      ffi.NULL if host is None else host,
                                      0 if host is None else len(host))
        return rc, t

    assert init()[0] == lib.SA_OK and init()[1].ready == 1
    for bad in (dict(ttl=0), dict(ttl=-5), dict(ver=-1), dict(ver=0x10000), dict(ruid=-1),
                dict(ruid=2 ** 32), dict(host=None), dict(context=b"a\x00"), dict(host=b"\xff"),
                dict(cluster=b"\xed\xa0\x80")):
        rc, t = init(**bad)
        assert rc == lib.SA_E_ARG and t.ready == 0, bad
    # escaped strings longer than the struct's text: the caller takes the general call
    rc, t = init(host=b"\x01" * 200)
    assert rc == lib.SA_E_BUFFER and t.ready == 0
    assert native.fixed(60, 1, 2, b"auth", None, b"\x01" * 200) is None
    assert native.fixed(2 ** 64, 1, 2, b"auth", None, b"h") is None    # outside int64


def test_fixed_call_refusals_and_room():
    t = native.fixed(60, 1, 2, b"auth", None, b"h")
    out = ffi.new("char[]", 1024)

    def at(iat=NOW, uid=3, gid=4, payload=b"", tmpl=t, cap=1024, ks=KS):
        return lib.sa_create_fixed_at(ks, tmpl, iat, uid, gid, payload, len(payload), out, cap)

    assert at() > 0
    for bad in (dict(uid=-1), dict(uid=2 ** 32), dict(gid=-1), dict(gid=2 ** 32),
                dict(iat=2 ** 63 - 60), dict(tmpl=ffi.new("sa_create_fixed *")),
                dict(tmpl=ffi.NULL), dict(ks=ffi.NULL)):
        assert at(**bad) == -lib.SA_E_ARG, bad
    assert lib.sa_create_fixed_at(KS, t, NOW, 3, 4, ffi.NULL, 5, out, 1024) == -lib.SA_E_ARG
    # too little room: the length needed, and nothing written
    need = at()
    want = ffi.unpack(out, need)
    guard = ffi.new("char[]", need + 64)
    ffi.memmove(guard, b"\xaa" * (need + 64), need + 64)
    assert lib.sa_create_fixed_at(KS, t, NOW, 3, 4, b"", 0, guard, need - 1) == need
    assert ffi.unpack(guard, need + 64) == b"\xaa" * (need + 64)
    assert lib.sa_create_fixed_at(KS, t, NOW, 3, 4, b"", 0, guard, need) == need
    assert ffi.unpack(guard, need) == want and ffi.unpack(guard + need, 64) == b"\xaa" * 64
    # a payload past the 1024-byte pooled buffer and past the C stack buffer
    big = os.urandom(5000)
    assert fast(KS, NOW, 60, 1, 2, 3, 4, b"auth", None, b"h", big) == \
        general(KS, NOW, 60, 1, 2, 3, 4, b"auth", None, b"h", big)


# ---- create_credential: the cache and the previous call's claims -------------

@pytest.fixture
def small_cache(monkeypatch):
    """A cache of four entries and no previous call."""
    cache = BoundedCache(4)
    monkeypatch.setattr(credential, "_fixed_claims", cache)
    monkeypatch.setattr(credential, "_last_fixed", (object(),) * 6 + (False,))
    return cache


class Seconds(enum.IntEnum):
    MINUTE = 60


class Name(str):
    pass


def outcome(ring, **kw):
    try:
        return create_credential(ring, **kw)
    except Exception as e:  # noqa: BLE001 - compared
        return type(e), str(e)


def test_equal_values_of_other_types_after_a_cached_call(small_cache, monkeypatch):
    """A bool, float, IntEnum or str subclass equal to what the cache holds
    (and to the previous call's claims) gets the checks' answer, not the
    cached claims: what create_credential answers with nothing cached, and
    the reference writer's answer."""
    ring = RINGS["key"]
    base = dict(uid=1, gid=2, host="h", cluster="c", context="auth", ttl=60, ruid=1,
                version=1, now=NOW)
    tok = create_credential(ring, **base)
    assert tok == reference_create_credential(ring, **base)
    assert len(small_cache) == 1
    for over in (dict(ttl=60.0), dict(ttl=Seconds.MINUTE), dict(ruid=True), dict(version=True),
                 dict(host=Name("h")), dict(cluster=Name("c")), dict(context=Name("auth")),
                 dict(uid=True), dict(gid=1.0 + 1), dict(now=float(NOW))):
        kw = dict(base, **over)
        with monkeypatch.context() as m:            # nothing cached, no previous call
            m.setattr(credential, "_fixed_claims", BoundedCache(4))
            m.setattr(credential, "_last_fixed", (object(),) * 6 + (False,))
            fresh = outcome(ring, **kw)
        create_credential(ring, **base)             # the previous call: exactly base
        ours, ref = both(ring, **kw)
        assert ours == fresh, over
        # (a str subclass as context: create_credential signs it as the
        # string, the reference writer refuses it; so before the cache too)
        assert ours == ref or over == dict(context=Name("auth")), over
    ttl1 = dict(base, ttl=1)
    create_credential(ring, **ttl1)
    assert both(ring, **dict(ttl1, ttl=True)) == both(ring, **dict(ttl1, ttl=1.0))
    assert isinstance(both(ring, **dict(ttl1, ttl=True))[0], tuple)      # an error, as before


def test_equal_objects_made_anew_hit_the_cache(small_cache):
    ring = RINGS["key"]
    kw = dict(uid=1, gid=2, host="node" + str(7), cluster="".join(["c", "1"]), ttl=int("3600"),
              ruid=int("4242"), version=int("11520"), now=NOW)
    first = create_credential(ring, **kw)
    again = dict(kw, host="node" + str(7), cluster="".join(["c", "1"]), ttl=int("3600"),
                 ruid=int("4242"), version=int("11520"))
    assert again["ttl"] is not kw["ttl"] and again["host"] is not kw["host"]
    assert create_credential(ring, **again) == first == reference_create_credential(ring, **kw)
    assert len(small_cache) == 1


def test_cache_is_bounded_and_keeps_its_entries(small_cache):
    ring = RINGS["jwks"]
    hosts = [f"n{i}" for i in range(10)]
    for rnd in range(2):
        for h in hosts:
            kw = dict(uid=5, gid=6, host=h, payload=b"p" * rnd, now=NOW)
            assert create_credential(ring, **kw) == reference_create_credential(ring, **kw)
    # full after four: later claims are written anew each call, the first four stay
    assert len(small_cache) == 4
    assert sorted(k[2] for k in small_cache) == hosts[:4]


def test_claims_c_does_not_take_are_remembered_and_answered_as_before(small_cache):
    ring = RINGS["key"]
    for kw in (dict(host="\x01" * 300), dict(host="a\x00b"), dict(context="a\x00"),
               dict(ttl=0), dict(version=0x10000), dict(ruid=2 ** 32), dict(ttl=2 ** 64),
               dict(host="\ud800")):
        kw = dict(dict(uid=1, gid=2, host="h", now=NOW), **kw)
        for _ in range(2):
            ours, ref = both(ring, **kw)
            assert ours == ref, kw
    assert set(small_cache.values()) == {credential._UNFIT}


def test_per_call_values_c_refuses_after_a_cached_call(small_cache):
    ring = RINGS["key"]
    base = dict(uid=1, gid=2, host="h", now=NOW)
    for over in (dict(uid=-1), dict(gid=2 ** 32), dict(uid=2 ** 64), dict(now=2 ** 63 - 5),
                 dict(now=2 ** 63), dict(payload=bytearray(b"x")), dict(payload=b"")):
        create_credential(ring, **base)
        ours, ref = both(ring, **dict(base, **over))
        assert ours == ref, over


def test_a_new_key_signs_with_the_same_cached_claims(small_cache):
    """The cached claims hold no key: each call signs with the keyring's
    current snapshot."""
    a, b = Keyring.from_key_bytes(os.urandom(64)), Keyring.from_key_bytes(os.urandom(64))
    kw = dict(uid=1, gid=2, host="h", cluster="c")
    ta, tb = create_credential(a, **kw), create_credential(b, **kw)
    assert len(small_cache) == 1
    assert Verifier(a, verifier_uid=0).verify(ta).uid == 1
    assert Verifier(b, verifier_uid=0).verify(tb).uid == 1
    assert ta.rsplit(".", 1)[1] != tb.rsplit(".", 1)[1]


def test_threads_with_their_own_claims_get_their_own_tokens():
    """Threads alternating between constant claims (C runs without the GIL,
    the previous call's claims change under them) each get exactly the
    reference token."""
    ring = RINGS["key"]
    sets = [dict(host=f"h{i}", cluster=None if i % 2 else f"c{i}", ttl=30 + i, ruid=i,
                 payload=bytes([i]) * (i * 40)) for i in range(6)]
    want = {(i, uid): reference_create_credential(ring, uid=uid, gid=uid, now=NOW, **kw)
            for i, kw in enumerate(sets) for uid in range(20)}
    bad = []

    def run(k):
        for rnd in range(60):
            for j in range(len(sets)):
                i = (j + k + rnd) % len(sets)
                uid = (rnd + k) % 20
                got = create_credential(ring, uid=uid, gid=uid, now=NOW, **sets[i])
                if got != want[i, uid]:
                    bad.append((i, uid))

    threads = [threading.Thread(target=run, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not bad


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(items=st.lists(st.tuples(st.one_of(st.none(), st.integers(-(2 ** 63), 2 ** 63 - 1)),
                                maybe_bad_int, maybe_bad_int,
                                st.one_of(st.none(), st.just(b""), st.binary(max_size=300))),
                      max_size=7),
       host=raw, which=st.sampled_from(sorted(RINGS)))
def test_fixed_batch_is_the_fixed_call_for_each_item(items, host, which):
    """sa_create_fixed_many: each item's token is the single call's, or the
    first item the single call refuses is the one the batch names."""
    ks = RINGS[which].snapshot().keyset
    t = native.fixed(60, PROTOCOL_VERSION, 5, b"auth", b"c1", host)
    if t is None:
        return
    one = []
    for now, uid, gid, payload in items:
        try:
            tok = native.fixed_credential(ks, t, NOW if now is None else now, uid, gid, payload)
        except (native.Refused, OverflowError):
            tok = None
        one.append(tok)
    fixed_now = [(NOW if now is None else now, uid, gid, payload) for now, uid, gid, payload in items]
    toks, failed = native.fixed_many(ks, t, fixed_now)
    if None in one:
        assert (toks, failed) == ([], one.index(None))
    else:
        assert (toks, failed) == (one, None)


def test_fixed_batch_clock_and_room():
    """Items taking the clock share one reading of it; a batch longer than the
    first guess of its room is written after C says how much it needs."""
    t = native.fixed(60, PROTOCOL_VERSION, 5, b"auth", b"c1", b"h")
    before = c_time_floor()
    toks, failed = native.fixed_many(KS, t, [(None, u, u, None) for u in range(5)] + [(NOW, 9, 9, None)])
    assert failed is None
    v = Verifier(RINGS["key"], verifier_uid=5)
    creds = [v.verify(tok, now=NOW) for tok in toks]
    assert len({c.iat for c in creds[:5]}) == 1 and before <= creds[0].iat <= int(time.time())
    assert [c.uid for c in creds] == [0, 1, 2, 3, 4, 9] and creds[5].iat == NOW
    big = os.urandom(4000)     # far past the 512 bytes per item first tried
    toks, failed = native.fixed_many(KS, t, [(NOW, 1, 1, big)] * 3)
    assert failed is None and toks == [native.fixed_credential(KS, t, NOW, 1, 1, big)] * 3


def test_create_many_runs_of_constant_claims():
    """Items whose constant claims change along the batch: one C call per run,
    the same tokens as one create_credential call each."""
    ring = RINGS["key"]
    hosts = ["a", "a", "b", "b", "b", "a", "c"]
    items = [dict(uid=i, gid=i, host=h, now=NOW, payload=b"p" * i) for i, h in enumerate(hosts)]
    items.insert(3, dict(uid=50, gid=50, host="b", now=NOW, cluster="k"))
    assert create_many(ring, items) == [create_credential(ring, **kw) for kw in items]
    assert create_many(ring, []) == []


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(kws=st.lists(st.fixed_dictionaries(claims), min_size=1, max_size=4),
       which=st.sampled_from(sorted(RINGS)))
def test_repeated_calls_as_reference_and_create_many(kws, which):
    """Each input twice in a row (the second through the previous call's
    claims) and again after the others: the reference's token or error, and
    create_many's tokens."""
    ring = RINGS[which]
    for kw in kws + kws:
        for _ in range(2):
            ours, ref = both(ring, **kw)
            assert ours == ref
    try:
        many = create_many(ring, kws)
    except Exception:  # noqa: BLE001 - an item create_credential refuses too
        return
    assert many == [create_credential(ring, **kw) for kw in kws]


def test_create_many_fast_items_then_the_rest_in_one_call(small_cache):
    """Common-case items, then an item with an "id" (from there on the
    general batch call), errors numbered and raised as before."""
    from slurmauth_fast.identity import Identity
    ring = RINGS["key"]
    ident = Identity("n", "g", "/d", "/s", gids=(1,))
    items = [dict(uid=i, gid=i, host="h", now=NOW) for i in range(3)]
    items += [dict(uid=9, gid=9, host="h", now=NOW, identity=ident)]
    items += [dict(uid=i, gid=i, host="h", now=NOW, payload=b"p") for i in range(3)]
    want = [reference_create_credential(ring, **kw) for kw in items]
    assert create_many(ring, items) == want
    assert create_many(ring, iter(items[:3])) == want[:3]
    for bad in (dict(uid=1, gid=1, host="a\x00"), dict(uid=-1, gid=1), dict(uid=1, gid=1, ttl=True),
                dict(uid=1, gid=1, now=2 ** 63 - 1)):
        for at in (0, 2, 5):
            batch = items[:at] + [bad] + items[at:]
            ours, ref = both(ring, **bad)
            with pytest.raises(ref[0]) as got:
                create_many(ring, batch)
            assert str(got.value) == ref[1]
    with pytest.raises(TypeError):
        create_many(ring, items[:2] + [dict(uid=1, gid=1, bogus=2)])
    with pytest.raises(TypeError):
        create_many(ring, items[:2] + [dict(gid=1)])
