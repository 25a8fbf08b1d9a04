"""Slurm's pack format: the primitives every Slurm message is built from.

Slurm (``src/common/pack.c``) writes every integer big-endian; ``packmem``
writes a uint32 length then the bytes (length 0 means NULL) and refuses
lengths over 1 GiB on both sides; ``packstr`` is ``packmem`` of the string
including its terminating NUL, so ``"abc"`` packs as
``00 00 00 04 61 62 63 00`` and a NULL string as ``00 00 00 00``.

:class:`Unpacker` and :class:`Packer` are thin faces over the bounds-checked
C reader/writer in ``csrc/pack.c``. Unpacking never copies: ``unpackmem``
returns a :class:`memoryview` into the input. One rule is stricter than
Slurm's: a packstr with a NUL before its end is refused
(:class:`~slurmauth_fast.errors.EmbeddedNulError`), because Slurm's C code would
silently see a shorter string than the one that was sent.
"""
from __future__ import annotations

from typing import Optional

from ._bindings.pack import MAX_PACK_MEM, BytesLike, Packer, StrLike, Unpacker, str_bytes


def bytes_str(b: Optional[BytesLike]) -> Optional[str]:
    """Unpacked string bytes as str (UTF-8, undecodable bytes kept as surrogate
    escapes so :func:`str_bytes` restores them exactly); None stays None."""
    return None if b is None else bytes(b).decode("utf-8", "surrogateescape")


__all__ = ["MAX_PACK_MEM", "BytesLike", "Packer", "StrLike", "Unpacker", "bytes_str", "str_bytes"]
