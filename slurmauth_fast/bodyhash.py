"""Message-body binding: the hash an auth/slurm or auth/munge credential
carries of the RPC it authenticates.

Slurm's sender hashes the packed body with the message type and puts
``type_byte || digest`` into the credential's data ("payload"):

* type 2, K12 (Slurm's default HashPlugin): KangarooTwelve (RFC 9861) of the
  body with the msg_type as 2 big-endian bytes as customization string;
* type 4, SHA3: SHA3-256 of ``body || msg_type_be``;
* type 1, NONE: no digest, the payload is the 3 bytes ``01 || msg_type_be``.

The receiver recomputes the digest named by byte 0 and rejects a mismatch, so
a credential cannot be replayed onto another body or message type. A
credential without payload is refused only with
``CommunicationParameters=block_null_hash``; the NONE form only with
``block_zero_hash`` (both off by default in Slurm). The hashing runs in C
(``csrc/k12.c``, ``csrc/sha3.c`` over one Keccak-p[1600] permutation) with the
GIL released.
"""
from __future__ import annotations

from typing import Optional, Union

from ._core import ffi, lib
from .errors import (
    BadArgumentError,
    BlockedNoneHashError,
    BodyHashLengthError,
    BodyHashMismatchError,
    BodyHashMsgTypeError,
    MissingBodyHashError,
    UnknownHashTypeError,
    raise_for_status,
    register_status,
)

HASH_NONE = lib.SA_HASH_NONE
HASH_K12 = lib.SA_HASH_K12
HASH_SHA3 = lib.SA_HASH_SHA3
DIGEST_LEN = lib.SA_BODYHASH_DIGEST_LEN

BytesLike = Union[bytes, bytearray, memoryview]

register_status(lib.SA_E_HASH_MISSING, MissingBodyHashError,
                "credential carries no body hash (block_null_hash)")
register_status(lib.SA_E_HASH_NONE_BLOCKED, BlockedNoneHashError,
                "credential carries the NONE body hash (block_zero_hash)")
register_status(lib.SA_E_HASH_TYPE, UnknownHashTypeError, "unknown body hash type")
register_status(lib.SA_E_HASH_LENGTH, BodyHashLengthError, "body hash payload has the wrong length")
register_status(lib.SA_E_HASH_MSG_TYPE, BodyHashMsgTypeError,
                "NONE body hash names another message type")
register_status(lib.SA_E_HASH_MISMATCH, BodyHashMismatchError,
                "body hash mismatch: body or message type altered")


def _msg_type(msg_type: int) -> int:
    if not isinstance(msg_type, int) or not 0 <= msg_type <= 0xFFFF:
        raise BadArgumentError(f"msg_type {msg_type!r} is not a uint16")
    return msg_type


def body_hash_payload(body: BytesLike, msg_type: int, hash_type: int = HASH_K12) -> bytes:
    """The credential payload binding ``body`` and ``msg_type`` (33 bytes, or 3 for NONE)."""
    out = ffi.new("uint8_t[]", lib.SA_BODYHASH_MAX_PAYLOAD)
    outlen = ffi.new("size_t *")
    buf = ffi.from_buffer(body)
    raise_for_status(lib.sa_body_hash_payload(hash_type, buf, len(buf), _msg_type(msg_type),
                                              out, len(out), outlen), "body hash")
    return ffi.buffer(out, outlen[0])[:]


def check_body_hash(payload: Optional[BytesLike], body: BytesLike, msg_type: int, *,
                    block_null_hash: bool = False, block_zero_hash: bool = False) -> None:
    """Check a credential payload against the received body and msg_type.

    Returns None when it binds them; raises a
    :class:`~slurmauth_fast.errors.BodyHashError` subclass naming the failure.
    An empty payload counts as no payload, as in Slurm."""
    flags = (lib.SA_BH_BLOCK_NULL_HASH if block_null_hash else 0) | \
            (lib.SA_BH_BLOCK_ZERO_HASH if block_zero_hash else 0)
    p = ffi.from_buffer(payload) if payload is not None else ffi.NULL
    plen = len(p) if payload is not None else 0
    buf = ffi.from_buffer(body)
    raise_for_status(lib.sa_body_hash_check(p, plen, buf, len(buf), _msg_type(msg_type), flags),
                     "body hash")


def k12(data: BytesLike, custom: BytesLike = b"", length: int = 32) -> bytes:
    """KangarooTwelve(M = data, C = custom, L = length) (RFC 9861)."""
    if not isinstance(length, int) or length < 0:
        raise BadArgumentError("length must be a non-negative int")
    out = ffi.new("uint8_t[]", max(length, 1))
    m, c = ffi.from_buffer(data), ffi.from_buffer(custom)
    lib.sa_k12(m, len(m), c, len(c), out, length)
    return ffi.buffer(out, length)[:]


def sha3_256(data: BytesLike, suffix: BytesLike = b"") -> bytes:
    """SHA3-256(data || suffix) (FIPS 202)."""
    out = ffi.new("uint8_t[32]")
    a, b = ffi.from_buffer(data), ffi.from_buffer(suffix)
    lib.sa_sha3_256(a, len(a), b, len(b), out)
    return bytes(out)


__all__ = ["DIGEST_LEN", "HASH_K12", "HASH_NONE", "HASH_SHA3", "body_hash_payload",
           "check_body_hash", "k12", "sha3_256"]
