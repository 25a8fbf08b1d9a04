r"""JSON exactly as libjwt writes it (jansson ``JSON_COMPACT | JSON_SORT_KEYS``).

Checked byte for byte against Debian's libjwt 1.10.2 / jansson 2.14 in the
tests: no whitespace, object keys sorted by their UTF-8 bytes, integers bare,
``"`` ``\\`` and ``\b \f \n \r \t`` escaped short, every other control
character as ``\u00XX`` with UPPER-case hex (Python's json writes lower
case), ``/`` and everything from 0x7F up written as raw UTF-8.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

from .errors import BadArgumentError

_JSON_ESC = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
             "\t": "\\t"}
_JSON_NEEDS_ESC = re.compile(r'[\x00-\x1f"\\]')
_INT64 = range(-(2 ** 63), 2 ** 63)


def _escape(m: "re.Match[str]") -> str:
    ch = m.group()
    return _JSON_ESC.get(ch) or "\\u%04X" % ord(ch)


def _jansson_str(s: str) -> str:
    if not s.isascii():
        try:
            s.encode("utf-8")
        except UnicodeEncodeError:
            raise BadArgumentError("strings in a credential must be valid Unicode "
                                   "(no lone surrogates)") from None
    if _JSON_NEEDS_ESC.search(s) is None:
        return '"' + s + '"'
    if "\x00" in s:
        raise BadArgumentError("strings in a credential cannot contain NUL (libjwt takes C strings)")
    return '"' + _JSON_NEEDS_ESC.sub(_escape, s) + '"'


def jansson_dumps(obj: Any) -> bytes:
    """Serialise like jansson's ``json_dumps(JSON_COMPACT | JSON_SORT_KEYS)``
    as libjwt calls it. Keys are sorted by code point, which is the order of
    their UTF-8 bytes (jansson's strcmp). Floats are refused (Slurm never
    writes them)."""
    return _dump(obj, 0).encode("utf-8")


def _dump(obj: Any, depth: int) -> str:
    t = type(obj)
    if t is str:
        return _jansson_str(obj)
    if t is int:
        if obj not in _INT64:
            raise BadArgumentError("integer grant outside the 64-bit range jansson stores")
        return str(obj)
    if depth > 32:
        raise BadArgumentError("grant nests too deeply")
    if isinstance(obj, Mapping):
        for k in obj:
            if type(k) is not str:
                raise BadArgumentError("object keys must be strings")
        return "{" + ",".join([_jansson_str(k) + ":" + _dump(obj[k], depth + 1)
                               for k in sorted(obj)]) + "}"
    if isinstance(obj, (list, tuple)):
        return "[" + ",".join([_dump(v, depth + 1) for v in obj]) + "]"
    if obj is None:
        return "null"
    if obj is True:
        return "true"
    if obj is False:
        return "false"
    if isinstance(obj, int):  # an int subclass (e.g. IntEnum): its value
        return _dump(int(obj), depth)
    if isinstance(obj, str):
        return _jansson_str(str(obj))
    raise BadArgumentError(f"cannot put a {type(obj).__name__} in a credential")
