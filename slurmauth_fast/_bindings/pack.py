"""Slurm's pack format (``csrc/pack.h``): the bounds-checked C reader and
writer behind :class:`slurmauth_fast.pack.Unpacker` and :class:`~slurmauth_fast.pack.Packer`."""
from __future__ import annotations

from typing import Any, Optional, Union

from ..exceptions import BadArgumentError, BadArgumentTypeError
from ._ffi import ffi, lib
from .status import raise_for_status

MAX_PACK_MEM = lib.SA_PACK_MAX_MEM

BytesLike = Union[bytes, bytearray, memoryview]
StrLike = Union[str, bytes, bytearray, memoryview]


def str_bytes(s: Optional[StrLike], what: str = "string") -> Optional[bytes]:
    """A packstr argument as bytes (str is UTF-8 encoded, surrogate escapes
    restoring undecodable bytes from :func:`bytes_str`); None stays None (NULL)."""
    if s is None:
        return None
    if isinstance(s, str):
        return s.encode("utf-8", "surrogateescape")
    if isinstance(s, (bytes, bytearray, memoryview)):
        return bytes(s)
    raise BadArgumentTypeError(f"{what} must be str or bytes, not {type(s).__name__}")


class Unpacker:
    """Reads Slurm-packed fields from ``data`` in order, never past its end.

    Each method raises a :class:`~slurmauth_fast.errors.PackError` subclass and
    leaves the position unchanged when the field does not unpack.
    """

    __slots__ = ("_cbuf", "_view", "_r")

    def __init__(self, data: BytesLike) -> None:
        self._view = memoryview(data).cast("B")
        self._cbuf = ffi.from_buffer(self._view)  # keeps the memory alive for the reader
        self._r = ffi.new("sa_reader *")
        lib.sa_reader_init(self._r, self._cbuf, len(self._view))

    @property
    def offset(self) -> int:
        """Bytes consumed so far."""
        return int(self._r.off)

    @property
    def remaining(self) -> int:
        """Bytes not yet consumed."""
        return int(self._r.len - self._r.off)

    def _int(self, fn: Any, ctype: str) -> int:
        out = ffi.new(ctype)
        raise_for_status(fn(self._r, out), f"unpack at offset {self.offset}")
        return int(out[0])

    def unpack16(self) -> int:
        return self._int(lib.sa_unpack16, "uint16_t *")

    def unpack32(self) -> int:
        return self._int(lib.sa_unpack32, "uint32_t *")

    def unpack64(self) -> int:
        return self._int(lib.sa_unpack64, "uint64_t *")

    def unpackmem(self) -> Optional[memoryview]:
        """The next packmem as a view into the input; None for a NULL (length 0)."""
        off, n = ffi.new("size_t *"), ffi.new("size_t *")
        raise_for_status(lib.sa_unpackmem_view(self._r, off, n), f"unpackmem at offset {self.offset}")
        return self._view[off[0]:off[0] + n[0]] if n[0] else None

    def unpackstr(self) -> Optional[bytes]:
        """The next packstr without its NUL; None for a NULL string."""
        off, n = ffi.new("size_t *"), ffi.new("size_t *")
        raise_for_status(lib.sa_unpackstr_view(self._r, off, n), f"unpackstr at offset {self.offset}")
        return bytes(self._view[off[0]:off[0] + n[0] - 1]) if n[0] else None


class Packer:
    """Builds a Slurm-packed buffer; :meth:`getvalue` returns the bytes."""

    __slots__ = ("_buf", "_w")

    def __init__(self, capacity: int = 256) -> None:
        self._buf = ffi.new("uint8_t[]", max(capacity, 16))
        self._w = ffi.new("sa_writer *")
        lib.sa_writer_init(self._w, self._buf, len(self._buf))

    def __len__(self) -> int:
        return int(self._w.off)

    def _reserve(self, n: int) -> None:
        if self._w.cap - self._w.off >= n:
            return
        used = int(self._w.off)
        cap = max(2 * len(self._buf), used + n)
        buf = ffi.new("uint8_t[]", cap)
        ffi.memmove(buf, self._buf, used)
        self._buf = buf
        lib.sa_writer_init(self._w, buf, cap)
        self._w.off = used

    def _int(self, fn: Any, v: int, size: int) -> "Packer":
        if not isinstance(v, int) or not 0 <= v < 1 << (8 * size):
            raise BadArgumentError(f"{v!r} is not a uint{8 * size}")
        self._reserve(size)
        raise_for_status(fn(self._w, v), "pack")
        return self

    def pack16(self, v: int) -> "Packer":
        return self._int(lib.sa_pack16, v, 2)

    def pack32(self, v: int) -> "Packer":
        return self._int(lib.sa_pack32, v, 4)

    def pack64(self, v: int) -> "Packer":
        return self._int(lib.sa_pack64, v, 8)

    def packmem(self, data: Optional[BytesLike]) -> "Packer":
        """uint32 length then the bytes; None or b"" packs as NULL (length 0)."""
        buf = ffi.from_buffer(data) if data is not None else ffi.NULL
        n = len(buf) if data is not None else 0
        self._reserve(4 + n)
        raise_for_status(lib.sa_packmem(self._w, buf, n), "packmem")
        return self

    def packstr(self, s: Optional[StrLike]) -> "Packer":
        """The string plus its NUL, as packmem; None packs a NULL string."""
        b = str_bytes(s)
        self._reserve(5 + (len(b) if b is not None else 0))
        raise_for_status(lib.sa_packstr(self._w, b if b is not None else ffi.NULL,
                                        len(b) if b is not None else 0), "packstr")
        return self

    def getvalue(self) -> bytes:
        return ffi.buffer(self._buf, self._w.off)[:]
