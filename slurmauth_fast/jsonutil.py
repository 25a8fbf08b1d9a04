"""JSON exactly as Slurm's libjwt writes and strictly as we accept it.

libjwt serialises with jansson's ``JSON_COMPACT | JSON_SORT_KEYS``: no
whitespace, object keys sorted, integers bare, non-ASCII UTF-8 written as is.
On input we refuse what a lenient parser would let through: duplicate keys
(two parsers could disagree on which one wins), NaN/Infinity, non-UTF-8 bytes
and nesting deeper than :data:`MAX_DEPTH`.
"""
from __future__ import annotations

import json
import re
from typing import Any, Dict, List, Tuple, Type

from .errors import SlurmAuthError

MAX_DEPTH = 16


# One JSON escape sequence: \uXXXX, or a backslash and the character it escapes.
_ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|.)")


def _upper_hex(m: "re.Match[str]") -> str:
    return "\\u" + m.group(1).upper() if m.group(1) else m.group(0)


def dumps_compact(obj: Any) -> bytes:
    """Serialise like libjwt/jansson: compact, keys sorted, UTF-8.

    jansson writes control characters without a short form as ``\\u001F``
    (upper-case hex) where Python writes ``\\u001f``; the escapes are rewritten
    so the bytes (and so the signature) match libjwt's exactly."""
    text = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False, allow_nan=False)
    if "\\u" in text:
        text = _ESCAPE.sub(_upper_hex, text)
    return text.encode("utf-8")


class _Duplicate(ValueError):
    pass


def _pairs(pairs: List[Tuple[str, Any]]) -> Dict[str, Any]:
    out: Dict[str, Any] = {}
    for k, v in pairs:
        if k in out:
            raise _Duplicate(f"duplicate key {k!r}")
        out[k] = v
    return out


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth(raw: str) -> int:
    depth = best = 0
    in_str = esc = False
    for ch in raw:
        if in_str:
            if esc:
                esc = False
            elif ch == "\\":
                esc = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > best:
                best = depth
        elif ch in "]}":
            depth -= 1
    return best


def loads_object(raw: bytes, exc: Type[SlurmAuthError], what: str) -> Dict[str, Any]:
    """Parse a JSON object strictly; raise ``exc`` naming ``what`` on any problem."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise exc(f"{what} is not valid UTF-8") from None
    # Counting brackets bounds the depth from above; scan only when it might be too deep.
    if text.count("{") + text.count("[") > MAX_DEPTH and _depth(text) > MAX_DEPTH:
        raise exc(f"{what} nests deeper than {MAX_DEPTH} levels")
    try:
        obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant)
    except _Duplicate as e:
        raise exc(f"{what} has a {e}") from None
    except ValueError as e:
        raise exc(f"{what} is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(obj, dict):
        raise exc(f"{what} is not a JSON object")
    return obj
