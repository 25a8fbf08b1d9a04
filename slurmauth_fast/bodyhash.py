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
``block_zero_hash`` (both off by default in Slurm). A payload of a hash whose
plugin slurmctld does not load is refused as an unknown type: ``hash_plugins``
is slurm.conf's HashPlugin list (default ``hash/k12`` alone, so SHA3 needs
``("k12", "sha3")``; k12 is always loaded, as in Slurm). The hashing runs in C
(``csrc/k12.c``, ``csrc/sha3.c`` over one Keccak-p[1600] permutation) with the
GIL released.
"""
from __future__ import annotations

from typing import Iterable, Optional, Union

from ._bindings import bodyhash as _bh
from ._bindings.bodyhash import DIGEST_LEN, HASH_K12, HASH_NONE, HASH_SHA3
from .exceptions import BadArgumentError

BytesLike = Union[bytes, bytearray, memoryview]


def _msg_type(msg_type: int) -> int:
    if not isinstance(msg_type, int) or not 0 <= msg_type <= 0xFFFF:
        raise BadArgumentError(f"msg_type {msg_type!r} is not a uint16")
    return msg_type


#: The hash plugins Slurm has (HashPlugin names, without "hash/").
HASH_PLUGINS = ("k12", "sha3")
#: slurm.conf's default HashPlugin.
DEFAULT_HASH_PLUGINS = ("k12",)


def hash_policy(hash_plugins: Iterable[str] = DEFAULT_HASH_PLUGINS) -> int:
    """The C policy flags for a HashPlugin list ("k12", "hash/sha3", ...)."""
    if isinstance(hash_plugins, str):
        raise BadArgumentError("hash_plugins is a list of names, e.g. ('k12', 'sha3')")
    names = set()
    for name in hash_plugins:
        short = name[5:] if isinstance(name, str) and name.startswith("hash/") else name
        if short not in HASH_PLUGINS:
            raise BadArgumentError(f"unknown hash plugin {name!r}; known: {', '.join(HASH_PLUGINS)}")
        names.add(short)
    return 0 if "sha3" in names else _bh.NO_SHA3


def body_hash_payload(body: BytesLike, msg_type: int, hash_type: int = HASH_K12) -> bytes:
    """The credential payload binding ``body`` and ``msg_type`` (33 bytes, or 3 for NONE)."""
    return _bh.payload(body, _msg_type(msg_type), hash_type)


def check_body_hash(payload: Optional[BytesLike], body: BytesLike, msg_type: int, *,
                    block_null_hash: bool = False, block_zero_hash: bool = False,
                    hash_plugins: Iterable[str] = DEFAULT_HASH_PLUGINS) -> None:
    """Check a credential payload against the received body and msg_type.

    Returns None when it binds them; raises a
    :class:`~slurmauth_fast.errors.BodyHashError` subclass naming the failure.
    An empty payload counts as no payload, as in Slurm."""
    flags = (_bh.BLOCK_NULL_HASH if block_null_hash else 0) | \
            (_bh.BLOCK_ZERO_HASH if block_zero_hash else 0) | hash_policy(hash_plugins)
    _bh.check(payload, body, _msg_type(msg_type), flags)


def k12(data: BytesLike, custom: BytesLike = b"", length: int = 32) -> bytes:
    """KangarooTwelve(M = data, C = custom, L = length) (RFC 9861)."""
    if not isinstance(length, int) or length < 0:
        raise BadArgumentError("length must be a non-negative int")
    return _bh.k12(data, custom, length)


def sha3_256(data: BytesLike, suffix: BytesLike = b"") -> bytes:
    """SHA3-256(data || suffix) (FIPS 202)."""
    return _bh.sha3_256(data, suffix)


__all__ = ["DEFAULT_HASH_PLUGINS", "DIGEST_LEN", "HASH_K12", "HASH_NONE", "HASH_PLUGINS", "HASH_SHA3",
           "body_hash_payload", "check_body_hash", "hash_policy", "k12", "sha3_256"]
