"""Verifier.verify_many / verify_batch (C: sc_verify_list for bytes tokens,
sc_verify_many for str ones): every token gets
exactly the answer verify() gives it, whatever the mix of layouts, keys,
identity objects and failures, wherever a failure falls in the pairs whose
MACs are computed together; the columns agree with the Credentials; the C
entry refuses bad buffers and lengths."""
import base64
import json
import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from slurmauth_fast import errors as E
from slurmauth_fast._bindings import ffi, lib
from slurmauth_fast.identity import Identity
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import Verifier, VerifiedBatch, create_credential

NOW = 1_700_000_000
RING = Keyring.from_key_bytes(os.urandom(32))
IDENT = Identity("u", "g", "/home/u", "/bin/sh", gids=(5, 6))
SAME = create_credential(RING, uid=1, gid=1, host="n1", cluster="c", payload=b"\x02" * 33, now=NOW)
POOL = [
    SAME,
    create_credential(RING, uid=2, gid=20, host="a-longer-host", now=NOW),      # other layout
    create_credential(RING, uid=3, gid=30, host="n1", identity=IDENT, now=NOW),  # "id" object
    create_credential(RING, uid=4, gid=40, host="n1", now=NOW - 120),           # expired
    SAME[:-3] + "AAA",                                                           # bad MAC
    SAME[:-1],                                                                   # short tag
    "x" + SAME,                                                                  # bad header
    "\u00e9",                                                                    # not ASCII
    "a.b\n.c",                                                                   # holds the separator
    "",
    create_credential(RING, uid=5, gid=50, host="n1", context="launch", now=NOW),  # context refused
    create_credential(Keyring.from_key_bytes(b"another key"), uid=6, gid=6, host="n", now=NOW),
]


def single(v, tok):
    try:
        return v.verify(tok, now=NOW)
    except E.CredentialError as e:
        return e


def assert_same(got, want):
    if isinstance(want, E.CredentialError):
        assert type(got) is type(want) and str(got) == str(want)
    else:
        assert got == want and got.identity == want.identity


def check_batch(v, toks):
    batch = v.verify_many(toks, now=NOW)
    listed = v.verify_batch(toks, now=NOW)
    assert isinstance(batch, VerifiedBatch) and len(batch) == len(listed) == len(toks)
    status, uid, gid = batch.status, batch.uid, batch.gid
    for i, tok in enumerate(toks):
        want = single(v, tok)
        assert_same(listed[i], want)
        assert_same(batch[i], want)
        if isinstance(want, E.CredentialError):
            assert status[i] != 0 and uid[i] == gid[i] == 0
            assert status[i] == (want.status if want.status is not None else -1)
            with pytest.raises(type(want)):
                batch.credential(i)
        else:
            assert status[i] == 0 and (uid[i], gid[i]) == (want.uid, want.gid)
            assert batch.credential(i) == want
    assert batch.verified == sum(1 for r in listed if not isinstance(r, E.CredentialError))


def test_mixed_batch_matches_single_calls():
    v = Verifier(RING, verifier_uid=0)
    check_batch(v, [SAME, SAME, POOL[1], SAME, POOL[2], SAME, POOL[3], POOL[4], POOL[7], SAME])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(range(len(POOL))), max_size=9), st.sampled_from(["str", "bytes", "mixed"]))
def test_any_mix_and_order_matches_single_calls(picks, kind):
    v = Verifier(RING, verifier_uid=0)
    toks = [POOL[i] for i in picks]
    if kind == "bytes":
        toks = [t.encode("utf-8") for t in toks]
    elif kind == "mixed":
        toks = [t.encode("utf-8") if i % 2 else t for i, t in enumerate(toks)]
    check_batch(v, toks)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.integers(0, len(SAME)), st.sampled_from([".", "", "a"])), max_size=4),
       st.integers(0, 3), st.sampled_from([len(SAME) - 1, len(SAME), 4096]))
def test_dots_anywhere_match_single_calls(edits, where, max_len):
    """The separated batch finds each token's end and its '.'s in one pass
    (16 or 64 bytes at a time, or byte by byte): a '.' added, removed or moved
    (across blocks, next to the separator), and a token at or over max_len,
    get what verify() says under every scanner."""
    tok = SAME
    for at, ch in edits:
        at = min(at, len(tok))
        tok = tok[:at] + ch + tok[at + (ch != "."):]
    v = Verifier(RING, verifier_uid=0, max_len=max_len)
    toks = [SAME] * where + [tok] + [SAME, tok]
    try:
        for impl in (lib.SC_SCAN_PORTABLE, lib.SC_SCAN_SSE2, lib.SC_SCAN_AVX512):
            if lib.sc_scan_select(impl) != impl:
                continue
            check_batch(v, toks)
            check_batch(v, [tok])
            check_batch(v, [t.encode() for t in toks])     # listed: no separator to find
    finally:
        lib.sc_scan_select(lib.SC_SCAN_AUTO)


def test_a_dot_at_every_offset_and_every_length_matches_single_calls():
    """A listed token's dots are found 64 bytes at a time, the last block by a
    masked load: a '.' put at every offset, and tokens of every length ending
    in a '.', get what verify() says under every scanner."""
    tok = SAME.encode()
    toks = [tok[:k] + b"." + tok[k + 1:] for k in range(len(tok))]
    toks += [tok[:k] + b"." for k in range(len(tok))] + [tok[:k] for k in range(len(tok))]
    v = Verifier(RING, verifier_uid=0)
    try:
        for impl in (lib.SC_SCAN_PORTABLE, lib.SC_SCAN_SSE2, lib.SC_SCAN_AVX512):
            if lib.sc_scan_select(impl) == impl:
                check_batch(v, toks)
    finally:
        lib.sc_scan_select(lib.SC_SCAN_AUTO)


@pytest.mark.parametrize("impl", [lib.SA_SHA256_PORTABLE, lib.SA_SHA256_SHANI], ids=["portable", "sha-ni"])
def test_pairs_under_each_sha256_implementation(impl):
    if impl == lib.SA_SHA256_SHANI and not lib.sa_sha256_shani_available():
        pytest.skip("this CPU has no SHA-NI")
    assert lib.sa_sha256_select(impl) == impl
    try:
        v = Verifier(RING, verifier_uid=0)
        check_batch(v, [SAME, POOL[4], POOL[1], SAME, POOL[2], POOL[0], POOL[3]])
    finally:
        lib.sa_sha256_select(lib.SA_SHA256_AUTO)


def _jwk(kid, secret, default=False):
    d = {"kid": kid, "kty": "oct", "alg": "HS256", "k": base64.b64encode(secret).decode()}
    if default:
        d["use"] = "default"
    return d


def test_pairs_signed_by_different_jwks_keys():
    k1, k2 = os.urandom(32), os.urandom(48)
    ring1 = Keyring.from_jwks(json.dumps({"keys": [_jwk("k1", k1, True), _jwk("k2", k2)]}))
    ring2 = Keyring.from_jwks(json.dumps({"keys": [_jwk("k1", k1), _jwk("k2", k2, True)]}))
    a = create_credential(ring1, uid=10, gid=10, host="h", now=NOW)
    b = create_credential(ring2, uid=20, gid=20, host="h", now=NOW)
    v = Verifier(ring1, verifier_uid=0)
    got = v.verify_batch([a, b, b, a, a], now=NOW)
    assert [(c.uid, c.kid) for c in got] == [(10, "k1"), (20, "k2"), (20, "k2"), (10, "k1"), (10, "k1")]


def test_columns_for_a_large_batch_and_empty_batch():
    v = Verifier(RING, verifier_uid=0)
    toks = [create_credential(RING, uid=i, gid=i + 1, host="n", now=NOW) for i in range(101)]
    head, _, sig = toks[50].rpartition(".")
    toks[50] = head + "." + ("B" if sig[0] == "A" else "A") + sig[1:]
    batch = v.verify_many(toks, now=NOW)
    assert list(batch.uid) == [0 if i == 50 else i for i in range(101)]
    assert list(batch.gid) == [0 if i == 50 else i + 1 for i in range(101)]
    assert [i for i, s in enumerate(batch.status) if s] == [50]
    assert batch.status[50] == lib.SA_E_BAD_SIGNATURE and batch.verified == 100
    assert isinstance(batch[-51], E.SignatureError) and batch[-1].uid == 100
    with pytest.raises(IndexError):
        batch[101]
    assert v.verify_batch([]) == [] and len(v.verify_many(())) == 0
    assert v.verify_many(iter(toks[:3]), now=NOW).verified == 3   # any iterable


def test_bad_token_types_raise():
    v = Verifier(RING, verifier_uid=0)
    with pytest.raises(E.BadArgumentError):
        v.verify_many([SAME, 42], now=NOW)


# ---- the C entry ---------------------------------------------------------------

def _buffers(v, n, total, work_cap, out_cap, out_shift):
    wneed = lib.sc_batch_work_need(v.c_policy, total)
    oneed = lib.sc_batch_out_need(n, total)
    work = ffi.new("uint8_t[]", wneed + 16)
    out = ffi.new("uint8_t[]", oneed + 16)
    return (work, wneed if work_cap is None else work_cap,
            out + out_shift, oneed if out_cap is None else out_cap), out


def _call(v, packed, n, work_cap=None, out_cap=None, out_shift=0):
    """sc_verify_many over a separated buffer."""
    bufs, out = _buffers(v, n, len(packed), work_cap, out_cap, out_shift)
    return lib.sc_verify_many(RING.snapshot().keyset, v.c_policy, packed, len(packed), n, NOW,
                              *bufs), out


def _call_list(v, toks, lens=None, work_cap=None, out_cap=None, out_shift=0):
    """sc_verify_list over tokens each in its own buffer (None: a NULL address)."""
    keep = [ffi.NULL if t is None else ffi.from_buffer(t) for t in toks]
    lens = [0 if t is None else len(t) for t in toks] if lens is None else lens
    n = len(toks)
    bufs, out = _buffers(v, n, min(sum(lens), 1 << 20), work_cap, out_cap, out_shift)
    rc = lib.sc_verify_list(RING.snapshot().keyset, v.c_policy, ffi.new("const char *[]", keep),
                            ffi.new("size_t[]", lens), n, NOW, *bufs)
    return rc, out


def test_c_entry_refuses_bad_buffers_and_splits():
    v = Verifier(RING, verifier_uid=0)
    tok = SAME.encode()
    assert _call(v, tok + b"\n" + tok, 2)[0] == lib.SA_OK
    assert _call(v, tok + b"\n" + tok, 3)[0] == lib.SC_E_BATCH_SPLIT
    assert _call(v, tok + b"\n" + tok, 1)[0] == lib.SC_E_BATCH_SPLIT
    assert _call(v, b"", 0)[0] == lib.SA_OK
    assert _call(v, b"x", 0)[0] == lib.SC_E_BATCH_SPLIT
    assert _call(v, tok, 1, work_cap=100)[0] == lib.SC_E_SCRATCH
    assert _call(v, tok, 1, out_cap=100)[0] == lib.SC_E_SCRATCH
    assert _call(v, tok, 1, out_shift=4)[0] == lib.SA_E_ARG          # misaligned columns


def test_c_list_entry_takes_each_token_as_given():
    """sc_verify_list: a token is exactly its lens[i] bytes at toks[i], the
    separator byte included; bad addresses and lengths are refused whole."""
    v = Verifier(RING, verifier_uid=0)
    tok = SAME.encode()
    rc, out = _call_list(v, [tok, b"x", tok + b"\n", b"", None, tok])
    assert rc == lib.SA_OK
    status = ffi.cast("int32_t *", out + 8 * 6)
    want = [0, lib.SA_E_SEGMENTS, single(v, tok + b"\n").status, lib.SA_E_SEGMENTS,
            lib.SA_E_SEGMENTS, 0]
    assert [status[i] for i in range(6)] == want and want[2] not in (0, None)
    assert _call_list(v, [None], lens=[3])[0] == lib.SA_E_ARG            # NULL with a length
    assert _call_list(v, [tok, tok], lens=[len(tok), 2 ** 64 - 2])[0] == lib.SA_E_ARG  # wraps
    assert _call_list(v, [tok], lens=[2 ** 61])[0] == lib.SA_E_ARG       # more than memory
    assert _call_list(v, [tok], work_cap=100)[0] == lib.SC_E_SCRATCH
    assert _call_list(v, [tok], out_cap=100)[0] == lib.SC_E_SCRATCH
    assert _call_list(v, [tok], out_shift=4)[0] == lib.SA_E_ARG
    assert _call_list(v, [])[0] == lib.SA_OK


def test_addresses_are_read_from_a_tuple_of_bytes_only():
    """sa_py_bytes_items: the buffers of a tuple's bytes objects, up to the first
    item that is not exactly bytes; nothing for another container or count."""
    n = 4
    ptrs, lens, total = ffi.new("const char *[]", n), ffi.new("size_t[]", n), ffi.new("size_t *")

    class Sub(bytes):
        pass

    good = (b"ab", b"", b"cde", bytes(300))
    assert lib.sa_py_bytes_items(id(good), ptrs, lens, n, total) == n
    assert [ffi.buffer(ptrs[i], lens[i])[:] for i in range(n)] == list(good) and total[0] == 305
    assert lib.sa_py_bytes_items(id(good), ptrs, lens, 3, total) == 0          # not n items
    assert lib.sa_py_bytes_items(id(list(good)), ptrs, lens, n, total) == 0    # a list
    for bad, first in (((b"a", "b", b"c", b"d"), 1), ((b"a", b"b", bytearray(b"c"), b"d"), 2),
                       ((Sub(b"a"), b"b", b"c", b"d"), 0), ((b"a", b"b", b"c", None), 3)):
        assert lib.sa_py_bytes_items(id(bad), ptrs, lens, n, total) == first


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sampled_from(range(len(POOL))), min_size=1, max_size=9),
       st.sampled_from(["tuple", "generator", "subclass", "bytearray"]))
def test_bytes_batches_in_any_container_match_single_calls(picks, kind):
    """Bytes tokens are read where they are (sc_verify_list); other containers
    and token types are converted first, to the same answers."""

    class Sub(bytes):
        pass

    v = Verifier(RING, verifier_uid=0)
    toks = [POOL[i].encode() for i in picks]
    if kind == "subclass":
        toks[0] = Sub(toks[0])
    elif kind == "bytearray":
        toks[-1] = bytearray(toks[-1])
    check_batch(v, tuple(toks))
    if kind == "generator":
        with v.verify_many((t for t in toks), now=NOW) as batch:
            for got, tok in zip(batch.to_list(), toks):
                assert_same(got, single(v, tok))


def test_output_buffers_are_reused_and_columns_outlive_them():
    """A released batch's buffer goes to the next verify_many; the columns a
    caller kept are copies, so they still say what they said."""
    from slurmauth_fast._bindings import slurmcred
    pool = slurmcred.pooled()
    v = Verifier(RING, verifier_uid=0)
    a = [create_credential(RING, uid=100 + i, gid=1, host="n", now=NOW) for i in range(8)]
    b = [create_credential(RING, uid=200 + i, gid=2, host="n", now=NOW) for i in range(8)]
    pool.clear()
    first = v.verify_many(a, now=NOW)
    kept_uid, kept_status, kept_cred = first.uid, first.status, first[3]
    with pytest.raises(TypeError):
        kept_uid[0] = 5                      # read-only
    pooled = first._out
    first.release()
    assert pool == [pooled]
    second = v.verify_many(b, now=NOW)     # reuses it
    assert second._out is pooled and pool == []
    assert list(kept_uid) == [100 + i for i in range(8)] and kept_cred.uid == 103
    assert list(kept_status) == [0] * 8
    assert list(second.uid) == [200 + i for i in range(8)] and second.verified == 8
    assert [c.uid for c in second.to_list()] == [200 + i for i in range(8)]


def test_batch_and_single_agree_on_a_malformed_id_under_use_client_ids():
    """A correctly signed token with a malformed "id": under use_client_ids verify()
    refuses it, and so does verify_many, in its columns too (status -1, uid/gid 0);
    without use_client_ids both accept it, as slurmctld does."""
    ring = Keyring.from_key_bytes(b"k" * 32)
    now = 1_700_000_000
    claims = {"iat": now, "exp": now + 60, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
              "uid": 1234, "gid": 99, "host": "n1"}
    good = ring.snapshot().default_key.key.sign(claims)
    bad = ring.snapshot().default_key.key.sign(dict(claims, id={"name": 5}))
    strict = Verifier(ring, verifier_uid=0, use_client_ids=True)
    with pytest.raises(E.IdentityError):
        strict.verify(bad, now=now)
    with strict.verify_many([good, bad, good], now=now) as batch:
        assert list(batch.status) == [0, -1, 0]
        assert list(batch.uid) == [1234, 0, 1234] and list(batch.gid) == [99, 0, 99]
        assert batch.verified == 2
        assert isinstance(batch[1], E.IdentityError) and batch[0].uid == 1234
    plain = Verifier(ring, verifier_uid=0)
    assert plain.verify(bad, now=now).identity is None
    with plain.verify_many([good, bad], now=now) as batch:
        assert list(batch.status) == [0, 0] and batch.verified == 2
