"""The message-body hash (``csrc/bodyhash.h``, ``csrc/k12.h``, ``csrc/sha3.h``)."""
from __future__ import annotations

from typing import Optional, Union

from ._ffi import ffi, lib
from .status import raise_for_status

BytesLike = Union[bytes, bytearray, memoryview]

HASH_NONE = lib.SA_HASH_NONE
HASH_K12 = lib.SA_HASH_K12
HASH_SHA3 = lib.SA_HASH_SHA3
DIGEST_LEN = lib.SA_BODYHASH_DIGEST_LEN
BLOCK_NULL_HASH = lib.SA_BH_BLOCK_NULL_HASH
BLOCK_ZERO_HASH = lib.SA_BH_BLOCK_ZERO_HASH
NO_SHA3 = lib.SA_BH_NO_SHA3


def payload(body: BytesLike, msg_type: int, hash_type: int) -> bytes:
    """The credential payload binding ``body`` and ``msg_type``."""
    out = ffi.new("uint8_t[]", lib.SA_BODYHASH_MAX_PAYLOAD)
    outlen = ffi.new("size_t *")
    buf = ffi.from_buffer(body)
    try:
        rc = lib.sa_body_hash_payload(hash_type, buf, len(buf), msg_type, out, len(out), outlen)
    finally:
        ffi.release(buf)   # before any raise: see check
    raise_for_status(rc, "body hash")
    return ffi.buffer(out, outlen[0])[:]


def check(cred_payload: Optional[BytesLike], body: BytesLike, msg_type: int, flags: int) -> None:
    """Raise the BodyHashError for a payload that does not bind ``body`` and ``msg_type``."""
    p = ffi.from_buffer(cred_payload) if cred_payload is not None else ffi.NULL
    plen = len(p) if cred_payload is not None else 0
    buf = ffi.from_buffer(body)
    try:
        rc = lib.sa_body_hash_check(p, plen, buf, len(buf), msg_type, flags)
    finally:
        ffi.release(buf)
        if cred_payload is not None:
            ffi.release(p)
    # The buffer exports are released before raising: the exception's
    # traceback keeps this frame alive, and when the garbage collector clears
    # a memoryview (``body`` is usually one) while a from_buffer export of it
    # is still open, CPython later frees it through a NULL pointer (a segfault
    # seen under pytest; valgrind: _memory_release in memory_dealloc).
    raise_for_status(rc, "body hash")


def k12(data: BytesLike, custom: BytesLike, length: int) -> bytes:
    out = ffi.new("uint8_t[]", max(length, 1))
    m, c = ffi.from_buffer(data), ffi.from_buffer(custom)
    lib.sa_k12(m, len(m), c, len(c), out, length)
    return ffi.buffer(out, length)[:]


def sha3_256(data: BytesLike, suffix: BytesLike) -> bytes:
    out = ffi.new("uint8_t[32]")
    a, b = ffi.from_buffer(data), ffi.from_buffer(suffix)
    lib.sa_sha3_256(a, len(a), b, len(b), out)
    return bytes(out)
