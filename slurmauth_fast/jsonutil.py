"""JSON exactly as Slurm's libjwt writes and strictly as we accept it.

libjwt serialises with jansson's ``JSON_COMPACT | JSON_SORT_KEYS``: no
whitespace, object keys sorted, integers bare, non-ASCII UTF-8 written as is.
On input we refuse what a lenient parser would let through: duplicate keys
(two parsers could disagree on which one wins), NaN/Infinity, non-UTF-8 bytes,
nesting deeper than :data:`MAX_DEPTH`, numbers jansson refuses (integers
beyond int64, reals that overflow a double), and -- as jansson does by default, so
as Slurm does -- a ``\u0000`` escape (a C reader would cut "login01\0evil"
short) or a lone UTF-16 surrogate escape anywhere in a key or string.
"""
from __future__ import annotations

import json
import json.scanner
import re
from typing import Any, Callable, Dict, List, Optional, Set, Tuple, Type

from .errors import BadArgumentError, SlurmAuthError

MAX_DEPTH = 16


# One JSON escape sequence: \uXXXX, or a backslash and the character it escapes.
_ESCAPE = re.compile(r"\\(?:u([0-9a-f]{4})|.)")


def _upper_hex(m: "re.Match[str]") -> str:
    return "\\u" + m.group(1).upper() if m.group(1) else m.group(0)


# 19 digits or more: the only integers that can lie beyond int64.
_LONG_DIGITS = re.compile(r"[0-9]{19}")


def _big_int(obj: Any) -> bool:
    """Whether any integer in obj lies outside int64 (bool is not counted)."""
    if isinstance(obj, int) and not isinstance(obj, bool):
        return not -(2 ** 63) <= obj < 2 ** 63
    if isinstance(obj, dict):
        return any(_big_int(v) for v in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_big_int(v) for v in obj)
    return False


def dumps_compact(obj: Any, *, check_ints: bool = True) -> bytes:
    """Serialise like libjwt/jansson: compact, keys sorted, UTF-8.

    jansson writes control characters without a short form as ``\\u001F``
    (upper-case hex) where Python writes ``\\u001f``; the escapes are rewritten
    so the bytes (and so the signature) match libjwt's exactly.

    What :func:`loads_object` (and Slurm) would refuse is refused here too,
    with :class:`~slurmauth_fast.errors.BadArgumentError`: NaN/Infinity, values
    JSON cannot hold, integers beyond int64, NUL characters and unpaired
    surrogates in strings. ``check_ints=False`` skips the int64 scan (a
    regex over the text) for callers that range-checked every integer already."""
    try:
        text = json.dumps(obj, separators=(",", ":"), sort_keys=True, ensure_ascii=False,
                          allow_nan=False)
    except (TypeError, ValueError, RecursionError) as e:
        raise BadArgumentError(f"cannot serialise as JSON: {e}") from None
    if check_ints and _LONG_DIGITS.search(text) and _big_int(obj):
        raise BadArgumentError("an integer is beyond int64 (jansson, so Slurm, refuses it)")
    if "\\u" in text:
        if "\\u0000" in text and _bad_char(obj):
            raise BadArgumentError("a JSON string holds a NUL character (Slurm refuses \\u0000)")
        text = _ESCAPE.sub(_upper_hex, text)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:
        raise BadArgumentError("a JSON string holds an unpaired surrogate") from None


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


_INT64_MIN, _INT64_MAX = -(2 ** 63), 2 ** 63 - 1


class _Number(ValueError):
    pass


def _int64(text: str) -> int:
    """An integer as jansson reads it: json_int_t is int64, and a literal
    beyond it is an error ("too big integer"), not a bignum or a double."""
    if len(text) > 20:                    # also keeps int() off huge digit strings
        raise _Number("integer beyond int64")
    value = int(text)
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise _Number("integer beyond int64")
    return value


def _finite(text: str) -> float:
    """A real number as jansson reads it: strtod(), and a value that overflows
    a double is an error ("real number overflow"); underflow to 0 is not."""
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise _Number("real number overflows a double")
    return value


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


def _bad_char(obj: Any) -> bool:
    """Whether any key or string holds NUL or a lone surrogate (json leaves an
    unpaired ``\\udXXX`` escape as a surrogate code point; a pair is combined)."""
    if isinstance(obj, str):
        return "\x00" in obj or any("\ud800" <= ch <= "\udfff" for ch in obj)
    if isinstance(obj, dict):
        return any(_bad_char(k) or _bad_char(v) for k, v in obj.items())
    if isinstance(obj, list):
        return any(_bad_char(v) for v in obj)
    return False


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
        obj = json.loads(text, object_pairs_hook=_pairs, parse_constant=_no_constant,
                         parse_int=_int64, parse_float=_finite)
    except _Duplicate as e:
        raise exc(f"{what} has a {e}") from None
    except _Number as e:
        raise exc(f"{what} has a number jansson refuses: {e}") from None
    except ValueError as e:
        raise exc(f"{what} is not valid JSON ({e.__class__.__name__})") from None
    if not isinstance(obj, dict):
        raise exc(f"{what} is not a JSON object")
    # Only escapes can produce NUL or a surrogate (raw ones are refused by the
    # UTF-8 decoder and the JSON grammar), so the walk runs only when one is present.
    if "\\u" in text and _bad_char(obj):
        raise exc(f"{what} has a NUL (\\u0000) or unpaired surrogate escape")
    return obj


#: The json module's own scanner (its C one when built) with the default
#: decoder's settings: what ``json.loads`` runs on a str, without the per-call
#: decoder lookup and the two whitespace regex matches around it. Scanning
#: starts at the first character, so leading whitespace makes it fail and
#: the caller falls back to :func:`loads_object`.
_scan_once: Callable[[str, int], Tuple[Any, int]] = (
    json.scanner.make_scanner(json.JSONDecoder()))  # type: ignore[arg-type]


def _member_count(obj: Dict[str, Any]) -> int:
    """Keys of obj and of every object nested in it, together."""
    count = 0
    todo: List[Any] = [obj]
    while todo:
        item = todo.pop()
        values = item.values() if type(item) is dict else item
        if type(item) is dict:
            count += len(item)
        todo.extend(v for v in values if type(v) is dict or type(v) is list)
    return count


def loads_prescanned(raw: "bytes | bytearray", plain: int, objects: int, members: int,
                     exc: Type[SlurmAuthError], what: str) -> Dict[str, Any]:
    """:func:`loads_object` for bytes the C pre-scan (``sa_jws_decoded``) has
    looked at: the same dict or the same refusal, faster.

    When the pre-scan found nothing the strict rules care about besides
    duplicate keys (``plain``: no NUL or surrogate escape, no NaN/Infinity,
    no integer that may lie beyond int64, no real that may overflow, at most
    MAX_DEPTH levels), a plain JSON parse gives what the strict one gives,
    except that a duplicate key silently keeps its last value; the parsed
    objects then hold fewer keys than the ``members`` the pre-scan counted.
    Anything else -- not plain, not UTF-8, not JSON, trailing text, not an
    object, a duplicate -- goes to :func:`loads_object`, which decides."""
    if plain:
        try:
            text = raw.decode("utf-8")
            obj, end = _scan_once(text, 0)
        except (UnicodeDecodeError, StopIteration, ValueError, RecursionError):
            pass
        else:
            if (end == len(text) and type(obj) is dict
                    and (len(obj) if objects == 1 else _member_count(obj)) == members):
                return obj
    return loads_object(bytes(raw), exc, what)


def _copy_json(value: Any) -> Any:
    """A copy of a parsed JSON value sharing nothing mutable with it."""
    if type(value) is dict:
        return {k: _copy_json(v) for k, v in value.items()}
    if type(value) is list:
        return [_copy_json(v) for v in value]
    return value


def _copier(value: Any) -> Callable[[Any], Any]:
    """How to copy a list or object member of a kept object so that the copy
    shares nothing mutable with it: a shallow copy when it holds only
    scalars (str, numbers, bool, None: immutable), else a deep one."""
    members = value.values() if type(value) is dict else value
    if any(type(v) is dict or type(v) is list for v in members):
        return _copy_json
    return dict.copy if type(value) is dict else list.copy


class ParsedObjects:
    """JSON objects already read, by their exact bytes: the same bytes give
    the same object, so a reader that sees the same bytes again (a client
    sends its bearer token with every request) gets a copy of that object
    instead of a parse. Each answer is a fresh copy (the caller may change
    it); only the members holding a list or an object are copied deeply.
    An object is kept the second time its bytes are seen (the first time
    costs only their hash: bytes seen once do not pay for a copy), at most
    ``maxsize`` objects of at most ``max_bytes`` bytes (a full cache starts
    over). Put only what a reader accepted after the bytes were
    authenticated. ``note``, when given, is called on each object kept, and
    what it returns is handed out beside the copies (:meth:`get_noted`): a
    summary the reader would otherwise derive from the object each time."""

    __slots__ = ("maxsize", "max_bytes", "_note", "_entries", "_seen")

    def __init__(self, maxsize: int = 256, max_bytes: int = 4096,
                 note: Optional[Callable[[Dict[str, Any]], Any]] = None) -> None:
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self._note = note
        # bytes -> (the object, kept private; (name, how to copy it) of its
        # members holding a list or object; its note)
        self._entries: Dict[bytes, Tuple[Dict[str, Any], Tuple[Tuple[str, Callable[[Any], Any]], ...],
                                         Any]] = {}
        # hashes of bytes put once (a collision only keeps an object early)
        self._seen: Set[int] = set()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, raw: bytes) -> "Dict[str, Any] | None":
        """A copy of the object read from ``raw`` before, or None."""
        hit = self.get_noted(raw)
        return None if hit is None else hit[0]

    def get_noted(self, raw: bytes) -> "Tuple[Dict[str, Any], Any] | None":
        """A copy of the object read from ``raw`` before and its note (None
        without a ``note`` function), or None."""
        hit = self._entries.get(raw)
        if hit is None:
            return None
        obj, nested, noted = hit
        out = obj.copy()
        for name, copy in nested:
            out[name] = copy(out[name])
        return out, noted

    def put(self, raw: bytes, obj: Dict[str, Any]) -> Dict[str, Any]:
        """``obj``, what ``raw`` was just read as, for the caller: the first
        time these bytes are put, ``obj`` itself (only their hash is noted);
        the second time, a copy of ``obj``, which is kept."""
        if len(raw) > self.max_bytes:
            return obj
        seen = self._seen
        digest = hash(raw)
        if digest not in seen:
            if len(seen) >= 4 * self.maxsize:
                seen.clear()
            seen.add(digest)
            return obj
        entries = self._entries
        if len(entries) >= self.maxsize:
            entries.clear()
        entries[raw] = (obj, tuple([(k, _copier(v)) for k, v in obj.items()
                                    if type(v) is dict or type(v) is list]),
                        None if self._note is None else self._note(obj))
        return self.get(raw)  # type: ignore[return-value]

    def clear(self) -> None:
        self._entries.clear()
        self._seen.clear()
