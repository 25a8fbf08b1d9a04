"""HMAC-SHA256 keys, compact JWS HS256 and strict base64 (``csrc/hmac.h``,
``csrc/jws.h``, ``csrc/base64.h``)."""
from __future__ import annotations

import struct
import threading
from typing import Any, List, Optional, Tuple, Union

from ._ffi import ffi, lib
from .status import raise_for_status

BytesLike = Union[bytes, bytearray, memoryview]


def key_new(key: BytesLike) -> Any:
    """A keyed ``sa_hmac_key *`` (inner/outer states precomputed), wiped when
    garbage-collected or by :func:`key_wipe`."""
    ctx = ffi.gc(ffi.new("sa_hmac_key *"), lib.sa_hmac_key_wipe)
    buf = ffi.from_buffer(key)
    raise_for_status(lib.sa_hmac_key_init(ctx, buf, len(buf)), "HS256 key")
    return ctx


def key_ready(ctx: Any) -> bool:
    return bool(ctx.ready)


def key_wipe(ctx: Any) -> None:
    lib.sa_hmac_key_wipe(ctx)


def mac(ctx: Any, message: BytesLike) -> bytes:
    """HMAC-SHA256 under a keyed context."""
    out = ffi.new("uint8_t[32]")
    buf = ffi.from_buffer(message)
    lib.sa_hmac_sha256(ctx, buf, len(buf), out)
    return bytes(out)


def sign(ctx: Any, header: bytes, claims: bytes) -> str:
    """The compact JWS of already-serialised header and claims JSON."""
    cap = lib.sa_jws_hs256_signed_len(len(header), len(claims))
    out = ffi.new("char[]", cap)
    outlen = ffi.new("size_t *")
    raise_for_status(
        lib.sa_jws_hs256_sign(ctx, header, len(header), claims, len(claims), out, cap, outlen),
        "sign")
    return ffi.unpack(out, outlen[0]).decode("ascii")


def verify(ctx: Any, tok: bytes, max_len: int) -> Tuple[bytes, bytes]:
    """Size, shape, strict base64url and tag (constant time) of a compact
    JWS; its decoded header and claims bytes."""
    cap = lib.sa_b64_decoded_max(len(tok)) if len(tok) <= max_len else 0
    buf = ffi.new("uint8_t[]", 2 * cap + 2)
    lens = ffi.new("size_t[2]")
    raise_for_status(
        lib.sa_jws_hs256_verify(ctx, tok, len(tok), max_len,
                                buf, cap + 1, lens, buf + cap + 1, cap + 1, lens + 1))
    return ffi.buffer(buf, lens[0])[:], ffi.buffer(buf + cap + 1, lens[1])[:]


#: Bytes of the per-thread scratch buffer sa_jws_hs256_decode writes into
#: (tokens up to ~21 KiB); a longer token gets a buffer of its own.
SCRATCH_CAP = 16 * 1024
_scratch = threading.local()
#: sa_jws_decoded as laid out in C (size_t, size_t, int, int, uint32_t, uint32_t),
#: read in one call rather than field by field.
_DECODED = struct.Struct("@NNiiII")

#: (claims, header_kind, header, json_plain, objects, members): see sa_jws_decoded.
Decoded = Tuple[bytes, int, Optional[bytes], int, int, int]


def _new_scratch() -> Tuple[memoryview, Any, int, bytearray, Any]:
    """This thread's buffers: the decoded segments (a memoryview, its cffi
    pointer and size) and the sa_jws_decoded (with its pointer); the C call
    runs without the GIL, so threads must not share them."""
    data, result = bytearray(SCRATCH_CAP), bytearray(_DECODED.size)
    scratch = (memoryview(data), ffi.from_buffer("uint8_t[]", data), SCRATCH_CAP, result,
               ffi.cast("sa_jws_decoded *", ffi.from_buffer(result)))
    _scratch.buffers = scratch
    return scratch


_decode_call = lib.sa_jws_hs256_decode
_decode_key_call = lib.sa_jws_hs256_decode_key
_NULL = ffi.NULL


def decode(key: Any, tok: bytes, max_len: int, check_mac: bool = True) -> Decoded:
    """Size, shape, tag (constant time; skipped when ``check_mac`` is false),
    strict base64url and the claims pre-scan of a compact JWS, in one call.
    ``key`` is a keyed ``sa_hmac_key *`` (``sa_jws_hs256_decode``), or the
    key's own bytes (``sa_jws_hs256_decode_key``: refused when empty or a
    public key, keyed for this call only, nothing kept). The decoded header
    is None for a known header segment (``header_kind`` >= 0). A closed key
    raises BadArgumentError."""
    try:
        data, cdata, cap, result, cresult = _scratch.buffers
    except AttributeError:
        data, cdata, cap, result, cresult = _new_scratch()
    size = len(tok)
    # sa_b64_decoded_max(size); a token over max_len is refused by the call
    # before any work, so it gets no buffer
    if size // 4 * 3 + 2 > cap and size <= max_len:
        cap = size // 4 * 3 + 2
        own = bytearray(cap)
        data, cdata = memoryview(own), ffi.from_buffer("uint8_t[]", own)
    if type(key) is bytes:
        rc = _decode_key_call(key, len(key), tok, size, max_len, cdata, cap, cresult)
    else:
        rc = _decode_call(key if check_mac else _NULL, check_mac, tok, size, max_len, cdata, cap, cresult)
    if rc:
        if rc == lib.SA_E_ARG and check_mac and type(key) is not bytes and not key.ready:
            raise_for_status(rc, "HS256 key has been closed")
        raise_for_status(rc)
    n, header_len, kind, plain, objects, members = _DECODED.unpack_from(result)
    return (data[:n].tobytes(), kind, None if kind >= 0 else data[n:n + header_len].tobytes(),
            plain, objects, members)


def known_header_segments() -> List[bytes]:
    """The header segments ``sa_jws_hs256_decode`` recognises, by index."""
    return [ffi.string(lib.sa_jws_known_header(i)) for i in range(lib.SA_JWS_KNOWN_HEADERS)]


def b64_decode(raw: bytes, *, url: bool) -> Tuple[int, bytes]:
    """Strict base64url (``url``) or padded standard base64: the C status and
    the decoded bytes (empty on failure)."""
    cap = lib.sa_b64_decoded_max(len(raw))
    out = ffi.new("uint8_t[]", cap + 1)
    n = ffi.new("size_t *")
    decode = lib.sa_b64url_decode if url else lib.sa_b64_decode
    rc = decode(raw, len(raw), out, cap + 1, n)
    return rc, (bytes(ffi.buffer(out, n[0])) if rc == 0 else b"")
