"""Strict base64url (JWS) and padded standard base64 (Slurm's payload claim)."""
import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from slurmauth_fast._bindings import ffi, lib


def b64url_encode(data: bytes) -> str:
    cap = lib.sa_b64url_encoded_len(len(data))
    out = ffi.new("char[]", cap + 1)
    n = ffi.new("size_t *")
    assert lib.sa_b64url_encode(data, len(data), out, cap, n) == lib.SA_OK
    return ffi.unpack(out, n[0]).decode()


def b64_encode(data: bytes) -> str:
    cap = lib.sa_b64_encoded_len(len(data))
    out = ffi.new("char[]", cap + 1)
    n = ffi.new("size_t *")
    assert lib.sa_b64_encode(data, len(data), out, cap, n) == lib.SA_OK
    return ffi.unpack(out, n[0]).decode()


def decode(fn, text):
    raw = text.encode("latin-1") if isinstance(text, str) else text
    cap = lib.sa_b64_decoded_max(len(raw))
    out = ffi.new("uint8_t[]", cap + 1)
    n = ffi.new("size_t *")
    rc = fn(raw, len(raw), out, cap, n)
    return rc, (bytes(ffi.buffer(out, n[0])) if rc == lib.SA_OK else None)


@given(st.binary(max_size=300))
def test_url_roundtrip_matches_stdlib(data):
    enc = b64url_encode(data)
    assert enc == base64.urlsafe_b64encode(data).decode().rstrip("=")
    assert decode(lib.sa_b64url_decode, enc) == (lib.SA_OK, data)


@given(st.binary(max_size=300))
def test_std_roundtrip_matches_stdlib(data):
    enc = b64_encode(data)
    assert enc == base64.b64encode(data).decode()
    assert decode(lib.sa_b64_decode, enc) == (lib.SA_OK, data)


@pytest.mark.parametrize("text", ["A", "AAAAA", "QQ=", "QQ==", "QUI=", "a+b", "a/b", "ab c", "ab\x00c", "ab.c", "é", "ab\n"])
def test_url_rejects(text):
    assert decode(lib.sa_b64url_decode, text)[0] == lib.SA_E_BASE64


@pytest.mark.parametrize("text", ["QR", "QUJ"])
def test_url_rejects_noncanonical_trailing_bits(text):
    # "QQ" is the canonical encoding of b"A"; "QR" decodes to the same byte with stray bits.
    assert decode(lib.sa_b64url_decode, text)[0] == lib.SA_E_BASE64_NONCANON


@pytest.mark.parametrize("text", ["QQ", "QUI", "QQ=", "Q===", "====", "QQ=A", "Q=Q=", "QUJD=", "a-b_", "QQ==QQ=="])
def test_std_rejects(text):
    assert decode(lib.sa_b64_decode, text)[0] == lib.SA_E_BASE64


@pytest.mark.parametrize("text", ["QR==", "QUJ="])
def test_std_rejects_noncanonical(text):
    assert decode(lib.sa_b64_decode, text)[0] == lib.SA_E_BASE64_NONCANON


@given(st.binary(max_size=64), st.integers(min_value=0, max_value=255), st.data())
def test_url_any_char_outside_alphabet_rejected(data, bad, draw):
    alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    enc = bytearray(b64url_encode(data).encode())
    if not enc or bad in alphabet:
        return
    i = draw.draw(st.integers(min_value=0, max_value=len(enc) - 1))
    enc[i] = bad
    assert decode(lib.sa_b64url_decode, bytes(enc))[0] == lib.SA_E_BASE64


def test_decode_buffer_too_small():
    out = ffi.new("uint8_t[2]")
    n = ffi.new("size_t *")
    assert lib.sa_b64url_decode(b"QUJD", 4, out, 2, n) == lib.SA_E_BUFFER
