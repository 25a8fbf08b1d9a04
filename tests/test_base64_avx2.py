"""The AVX2 and AVX-512 VBMI base64 decoders (csrc/base64.c) against the
portable one and the standard library: the same bytes and the same status for
every input, including an invalid or non-canonical character anywhere in a
32- or 64-character block (or the masked last one). Skips the SIMD halves on
CPUs without them."""
import base64

import pytest
from hypothesis import given, strategies as st

from slurmauth_fast._bindings import ffi, lib

HAVE_AVX2 = lib.sa_b64_select(lib.SA_B64_AVX2) == lib.SA_B64_AVX2
lib.sa_b64_select(lib.SA_B64_AUTO)
HAVE_AVX512VBMI = lib.sa_b64_select(lib.SA_B64_AVX512VBMI) == lib.SA_B64_AVX512VBMI
lib.sa_b64_select(lib.SA_B64_AUTO)
IMPLS = [lib.SA_B64_PORTABLE] + ([lib.SA_B64_AVX2] if HAVE_AVX2 else []) + (
    [lib.SA_B64_AVX512VBMI] if HAVE_AVX512VBMI else []) + (
    [lib.SA_B64_NEON] if lib.sa_b64_select(lib.SA_B64_NEON) == lib.SA_B64_NEON else [])  # aarch64


def _decode(fn, text: bytes, cap=None):
    cap = len(text) if cap is None else cap
    out = ffi.new("uint8_t[]", max(cap, 1))
    n = ffi.new("size_t *")
    rc = fn(text, len(text), out, cap, n)
    return rc, (ffi.buffer(out, n[0])[:] if rc == 0 else None)


def _both(fn, text, cap=None):
    got = []
    try:
        for impl in IMPLS:
            assert lib.sa_b64_select(impl) == impl
            got.append(_decode(fn, text, cap))
    finally:
        lib.sa_b64_select(lib.SA_B64_AUTO)
    assert all(g == got[0] for g in got), got
    return got[0]


def test_select_reports_what_it_can():
    assert lib.sa_b64_select(lib.SA_B64_PORTABLE) == lib.SA_B64_PORTABLE
    assert lib.sa_b64_select(99) == -1
    assert lib.sa_b64_select(lib.SA_B64_AUTO) in (lib.SA_B64_PORTABLE, lib.SA_B64_AVX2, lib.SA_B64_NEON,
                                                  lib.SA_B64_AVX512VBMI)


@given(st.binary(min_size=0, max_size=2000))
def test_long_inputs_match_stdlib(data):
    url = base64.urlsafe_b64encode(data).rstrip(b"=")
    assert _both(lib.sa_b64url_decode, url) == (0, data)
    std = base64.b64encode(data)
    assert _both(lib.sa_b64_decode, std) == (0, data)


@given(st.binary(min_size=24, max_size=400), st.data())
def test_a_bad_character_anywhere_same_status(data, draw):
    url = bytearray(base64.urlsafe_b64encode(data).rstrip(b"="))
    pos = draw.draw(st.integers(0, len(url) - 1))
    bad = draw.draw(st.sampled_from(b"+/=.\x00 \x7f\x80\xff@[`{:"))
    url[pos] = bad
    rc, _ = _both(lib.sa_b64url_decode, bytes(url))
    assert rc != 0
    std = bytearray(base64.b64encode(data).rstrip(b"="))
    std[min(pos, len(std) - 1)] = draw.draw(st.sampled_from(b"-_.\x00 \x80\xff@[`{:"))
    rc, _ = _both(lib.sa_b64_decode, bytes(std) + b"=" * (-len(std) % 4))
    assert rc != 0


@pytest.mark.parametrize("impl", IMPLS)
def test_every_byte_value_in_every_block_position(impl):
    data = bytes(range(96))                       # 128 characters: four AVX2 blocks
    url = base64.urlsafe_b64encode(data)
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    try:
        lib.sa_b64_select(impl)
        for pos in (0, 5, 31, 32, 63, 100, 127):
            for b in range(256):
                t = bytearray(url)
                t[pos] = b
                rc, out = _decode(lib.sa_b64url_decode, bytes(t))
                if b in alphabet:
                    assert (rc, out) == (0, base64.urlsafe_b64decode(bytes(t))), (pos, b)
                else:
                    assert rc == lib.SA_E_BASE64, (pos, b)
    finally:
        lib.sa_b64_select(lib.SA_B64_AUTO)


def test_output_capacity_is_respected():
    data = bytes(range(48))
    url = base64.urlsafe_b64encode(data)
    for impl in IMPLS:
        lib.sa_b64_select(impl)
        assert _decode(lib.sa_b64url_decode, url, cap=48) == (0, data)
        assert _decode(lib.sa_b64url_decode, url, cap=47)[0] == lib.SA_E_BUFFER
    lib.sa_b64_select(lib.SA_B64_AUTO)


def _raw_all_impls(fn, text: bytes):
    """Status, length and the whole output buffer (bytes written before an
    error included, and a guard byte after) under every implementation."""
    cap = len(text)
    got = []
    try:
        for impl in IMPLS:
            assert lib.sa_b64_select(impl) == impl
            out = ffi.new("uint8_t[]", b"\xa5" * (cap + 1))
            n = ffi.new("size_t *", 7)
            rc = fn(text, len(text), out, cap, n)
            got.append((rc, n[0], ffi.buffer(out, cap + 1)[:]))
    finally:
        lib.sa_b64_select(lib.SA_B64_AUTO)
    assert all(g == got[0] for g in got), text
    return got[0][0]


@pytest.mark.parametrize("url", [True, False], ids=["base64url", "base64"])
def test_every_byte_value_at_every_position_of_short_inputs(url):
    # 32 to 68 characters: one whole AVX2 block, then the rest as a last block
    # that overlaps it (both alphabets: their 62nd/63rd characters differ)
    fn = lib.sa_b64url_decode if url else lib.sa_b64_decode
    alphabet = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789" + (b"-_" if url else b"+/"))
    for nbytes in (12, 24, 25, 26, 32, 33, 45, 48, 50):
        text = (base64.urlsafe_b64encode if url else base64.b64encode)(bytes(range(100, 100 + nbytes)))
        if url:
            text = text.rstrip(b"=")
        body = len(text.rstrip(b"="))
        for pos in range(len(text)):
            every = pos in (0, 17, 31, body - 5, body - 1)
            for b in range(256) if every else b"+/-_=.,@[`{:\x00 \x7f\x80\xff09AZaz":
                t = bytearray(text)
                t[pos] = b
                rc = _raw_all_impls(fn, bytes(t))
                if pos < body - 4 or (pos < body and body % 4 == 0):   # a whole quad: no trailing-bits rule
                    assert (rc == 0) == (b in alphabet), (nbytes, pos, b, rc)
