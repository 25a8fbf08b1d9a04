"""HMAC-SHA256 keys, compact JWS HS256 and strict base64 (``csrc/hmac.h``,
``csrc/jws.h``, ``csrc/base64.h``)."""
from __future__ import annotations

from typing import Any, Tuple, Union

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


def b64_decode(raw: bytes, *, url: bool) -> Tuple[int, bytes]:
    """Strict base64url (``url``) or padded standard base64: the C status and
    the decoded bytes (empty on failure)."""
    cap = lib.sa_b64_decoded_max(len(raw))
    out = ffi.new("uint8_t[]", cap + 1)
    n = ffi.new("size_t *")
    decode = lib.sa_b64url_decode if url else lib.sa_b64_decode
    rc = decode(raw, len(raw), out, cap + 1, n)
    return rc, (bytes(ffi.buffer(out, n[0])) if rc == 0 else b"")
