"""struct formats read from the C layouts cffi knows (``ffi.typeof`` offsets,
sizes and signedness), never typed by hand: one ``unpack_from`` reads many
fields at once, where each cdata attribute read costs as much as a small call."""
from __future__ import annotations

from typing import Dict, Tuple

from ._ffi import ffi


def _code(ctype: str, name: str) -> Tuple[int, int, str]:
    field = dict(ffi.typeof(ctype).fields)[name]
    size = ffi.sizeof(field.type)
    code = {2: "H", 4: "I", 8: "Q"}[size]
    if int(ffi.cast(field.type, -1)) < 0:
        code = code.lower()
    return field.offset, size, code


def offset(ctype: str, name: str) -> int:
    return int(ffi.offsetof(ctype, name))


def fields_format(ctype: str, *names: str, start: int = 0) -> Tuple[str, int]:
    """The struct format (no byte-order prefix) reading these fields of
    ``ctype``, in layout order, from ``start``, the bytes between them
    skipped; and the offset just past the last one."""
    fmt, pos = "", start
    for name in names:
        off, size, code = _code(ctype, name)
        assert off >= pos, name
        fmt += f"{off - pos}x{code}" if off > pos else code
        pos = off + size
    return fmt, pos


def sizes(ctype: str) -> Dict[str, int]:
    return {name: ffi.sizeof(f.type) for name, f in ffi.typeof(ctype).fields}
