"""Multi-buffer SHA-256 / HMAC-SHA256 (csrc/sha256_mb.c): every lane of every
implementation (portable reference, AVX2 8 lanes, AVX-512 16 lanes -- those
this CPU has) is bit-exact against hashlib/hmac for random lengths, lanes of
different lengths in one batch and different keys per lane; and
verify_many gives the same answers whichever implementation it runs."""
import hashlib
import hmac
import os

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.jws import HS256Key
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, create_credential

IMPLS = {"portable": lib.SA_MB_PORTABLE, "avx2": lib.SA_MB_AVX2, "avx512": lib.SA_MB_AVX512}


def impl_param(name):
    impl = IMPLS[name]
    return pytest.param(impl, id=name, marks=pytest.mark.skipif(
        not lib.sa_mb_available(impl), reason=f"this CPU has no {name}"))


ALL = [impl_param(n) for n in IMPLS]


def mb_sha256(impl, msgs):
    ptrs = [ffi.from_buffer(m) for m in msgs]
    out = ffi.new("uint8_t[]", 32 * max(1, len(msgs)))
    rc = lib.sa_sha256_mb(impl, ffi.new("uint8_t *[]", ptrs), ffi.new("size_t[]", list(map(len, msgs))),
                          len(msgs), out)
    assert rc == 0
    got = ffi.buffer(out)[:]
    return [got[32 * i:32 * i + 32] for i in range(len(msgs))]


def mb_hmac(impl, keys, msgs):
    ptrs = [ffi.from_buffer(m) for m in msgs]
    out = ffi.new("uint8_t[]", 32 * max(1, len(msgs)))
    rc = lib.sa_hmac_sha256_mb(impl, ffi.new("sa_hmac_key *[]", [k.cdata for k in keys]),
                               ffi.new("uint8_t *[]", ptrs),
                               ffi.new("size_t[]", list(map(len, msgs))), len(msgs), out)
    assert rc == 0
    got = ffi.buffer(out)[:]
    return [got[32 * i:32 * i + 32] for i in range(len(msgs))]


# lengths around the block and padding boundaries, and credential sizes
lengths = st.one_of(st.integers(0, 700), st.sampled_from([0, 1, 55, 56, 63, 64, 65, 119, 120,
                                                           127, 128, 129, 330, 1000]))
messages = st.lists(lengths.flatmap(lambda n: st.binary(min_size=n, max_size=n)), max_size=40)


@pytest.mark.parametrize("impl", ALL)
@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(msgs=messages)
def test_sha256_every_lane_is_hashlib(impl, msgs):
    assert mb_sha256(impl, msgs) == [hashlib.sha256(m).digest() for m in msgs]


@pytest.mark.parametrize("impl", ALL)
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(msgs=messages, keys=st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5),
       data=st.data())
def test_hmac_every_lane_is_hmac(impl, msgs, keys, data):
    picks = [data.draw(st.integers(0, len(keys) - 1)) for _ in msgs]
    hk = [HS256Key(keys[p]) for p in picks]
    want = [hmac.new(keys[p], m, hashlib.sha256).digest() for p, m in zip(picks, msgs)]
    assert mb_hmac(impl, hk, msgs) == want


@pytest.mark.parametrize("impl", ALL)
def test_mixed_lengths_one_group(impl):
    """One group of 16 lanes whose block counts all differ (1..17 blocks)."""
    msgs = [os.urandom(64 * i + i) for i in range(16)]
    assert mb_sha256(impl, msgs) == [hashlib.sha256(m).digest() for m in msgs]
    k = HS256Key(b"k" * 100)
    assert mb_hmac(impl, [k] * 16, msgs) == [hmac.new(b"k" * 100, m, hashlib.sha256).digest()
                                             for m in msgs]


def test_selection():
    active = lib.sa_mb_active()
    assert active in (lib.SA_MB_AVX2, lib.SA_MB_AVX512, lib.SA_MB_NONE)
    try:
        assert lib.sa_mb_select(99) == -1 and lib.sa_mb_active() == active
        assert lib.sa_mb_select(lib.SA_MB_PORTABLE) == lib.SA_MB_PORTABLE
        assert lib.sa_mb_select(lib.SA_MB_NONE) == lib.SA_MB_NONE
        for impl in (lib.SA_MB_AVX2, lib.SA_MB_AVX512):
            assert lib.sa_mb_select(impl) == (impl if lib.sa_mb_available(impl) else -1)
        assert lib.sa_mb_select(lib.SA_MB_AUTO) in (lib.SA_MB_AVX2, lib.SA_MB_AVX512,
                                                    lib.SA_MB_NONE)
    finally:
        lib.sa_mb_select(active)
    assert (lib.sa_mb_lanes(lib.SA_MB_AVX2), lib.sa_mb_lanes(lib.SA_MB_AVX512)) == (8, 16)


# ---- verify_many through each implementation --------------------------------------

NOW = 1_764_000_000
KEY = os.urandom(1024)


def batch():
    """Tokens of many lengths and fates: good, forged, expired, malformed,
    another key, long identities (so groups hold lanes of different lengths)."""
    ring = Keyring.from_key_bytes(KEY)
    other = Keyring.from_key_bytes(os.urandom(64))
    toks = []
    for i in range(70):
        kind = i % 7
        host = "h" * (1 + (i * 37) % 900)
        tok = create_credential(other if kind == 3 else ring, uid=i, gid=i + 1, host=host,
                                payload=os.urandom(i), now=NOW - (1000 if kind == 4 else 0))
        if kind == 5:
            tok = tok[:-3] + ("AAA" if not tok.endswith("AAA") else "BBB")
        if kind == 6 and i % 2:
            tok = tok.replace(".", "", 1)
        toks.append(tok)
    return ring, toks


@pytest.mark.parametrize("impl", ALL + [pytest.param(lib.SA_MB_NONE, id="none")])
def test_verify_many_same_answers(impl):
    ring, toks = batch()
    v = Verifier(ring, verifier_uid=0)
    active = lib.sa_mb_active()
    try:
        assert lib.sa_mb_select(impl) == impl
        for n in (0, 1, 2, 3, 15, 16, 17, 33, len(toks)):
            got = v.verify_many(toks[:n], now=NOW)
            want = []
            for t in toks[:n]:
                try:
                    want.append(v.verify(t, now=NOW))
                except Exception as e:  # noqa: BLE001 - compared below
                    want.append(e)
            assert list(got.status) == [0 if not isinstance(w, Exception) else w.status
                                        for w in want]
            assert [repr(x) for x in got.to_list()] == [repr(w) for w in want]
    finally:
        lib.sa_mb_select(active)


# ---- verify_many's pairs: two MACs stepped behind both tokens' claims ---------------

SHA_IMPLS = [pytest.param(lib.SA_SHA256_PORTABLE, id="sha-portable"),
             pytest.param(lib.SA_SHA256_SHANI, id="sha-ni", marks=pytest.mark.skipif(
                 not lib.sa_sha256_shani_available(), reason="this CPU has no SHA-NI"))]
OTHER_KEY = os.urandom(64)


def _b64url_decode(seg):
    import base64
    return base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))


def _tag_is_hmac(tok, key):
    """hashlib's verdict: the tag is HMAC-SHA256(key, header.claims), in the one canonical
    base64url spelling (a changed last character can leave the decoded bytes alone when it
    only changes the unused low bits; the verifier refuses that spelling like any other
    altered tag, and Python's decoder would not notice)."""
    import base64
    signing, _, sig = tok.rpartition(".")
    try:
        got = _b64url_decode(sig)
    except ValueError:
        return False
    if base64.urlsafe_b64encode(got).rstrip(b"=").decode() != sig:
        return False
    return hmac.compare_digest(got, hmac.new(key, signing.encode(), hashlib.sha256).digest())


tokens_spec = st.lists(st.tuples(st.integers(1, 900), st.integers(0, 80),
                                 st.sampled_from(["good", "tag", "other", "claims"])), max_size=11)


@pytest.mark.parametrize("sha", SHA_IMPLS)
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=tokens_spec, data=st.data())
def test_verify_many_pairs_agree_with_hashlib(sha, spec, data):
    """The 2-way path (SA_MB_NONE: pairs whose MACs are stepped alternately
    while both tokens' claims are scanned, an odd one alone): each token, in
    batches of mixed lengths and fates, is verified exactly when hashlib says
    its tag is the HMAC of its signing input, and gets verify()'s answer; with
    the portable SHA-256 (whole-block steps) and SHA-NI (half-block steps)."""
    ring = Keyring.from_key_bytes(KEY)
    other = Keyring.from_key_bytes(OTHER_KEY)
    toks = []
    for host_len, payload_len, fate in spec:
        tok = create_credential(other if fate == "other" else ring, uid=host_len, gid=payload_len,
                                host="h" * host_len, payload=os.urandom(payload_len) or None,
                                ruid=0, now=NOW)
        head, claims, sig = tok.split(".")
        if fate == "tag":       # one character of the tag changed
            i = data.draw(st.integers(0, len(sig) - 1))
            sig = sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]
        elif fate == "claims":  # one character of the claims changed, the tag kept
            i = data.draw(st.integers(0, len(claims) - 1))
            claims = claims[:i] + ("A" if claims[i] != "A" else "B") + claims[i + 1:]
        toks.append(".".join((head, claims, sig)))
    v = Verifier(ring, verifier_uid=0)
    active_sha, active_mb = lib.sa_sha256_active(), lib.sa_mb_active()
    try:
        assert lib.sa_sha256_select(sha) == sha and lib.sa_mb_select(lib.SA_MB_NONE) == lib.SA_MB_NONE
        got = v.verify_many(toks, now=NOW)
        want = []
        for t in toks:
            try:
                want.append(v.verify(t, now=NOW))
            except Exception as e:  # noqa: BLE001 - compared below
                want.append(e)
    finally:
        lib.sa_sha256_select(active_sha)
        lib.sa_mb_select(active_mb)
    for (_, _, fate), t, status in zip(spec, toks, got.status):
        assert (status == 0) == _tag_is_hmac(t, KEY), (fate, status)
        assert (status == 0) == (fate == "good")
    assert list(got.status) == [0 if not isinstance(w, Exception) else w.status for w in want]
    assert [repr(x) for x in got.to_list()] == [repr(w) for w in want]
