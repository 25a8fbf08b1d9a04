"""Credential creation in C (``csrc/create.c``): one call per credential,
one call per batch. Callers pass what is already checked and encoded:
integers in range, strings as UTF-8 bytes, extra members serialised and
sorted (:func:`members`); C writes the claims as libjwt/jansson would,
base64url-encodes them behind the key's precomputed header and signs them
with the key's precomputed HMAC states."""
from __future__ import annotations

import struct
from typing import Any, Callable, List, Optional, Sequence, Tuple

from ._ffi import ffi, lib

#: Output room tried first; a credential longer than this is retried with
#: the exact length C reports.
_CAP = 1024
_one = lib.sa_create_credential
_many = lib.sa_create_many
_fixed_init = lib.sa_create_fixed_init
_fixed_now = lib.sa_create_fixed_now
_fixed_at = lib.sa_create_fixed_at
_fixed_many = lib.sa_create_fixed_many
_unpack = ffi.unpack
_E_BUFFER = lib.SA_E_BUFFER
_NULL = ffi.NULL

Member = Tuple[bytes, bytes]   # (name as UTF-8, its value as compact JSON)


class Refused(ValueError):
    """C refused a string (NUL, invalid UTF-8) or the member records."""


def members(items: Sequence[Member]) -> bytes:
    """Extra members as C takes them: ``NAME\\0JSON\\0`` records in byte order
    of the names (Python's str order is the UTF-8 byte order)."""
    return b"".join(name + b"\0" + value + b"\0" for name, value in sorted(items))


# Output buffers between calls, each with an ffi.buffer over it (slicing
# that is the cheapest copy out): taking one is a list pop, atomic under the
# GIL, so two threads (C runs without the GIL) never share one; when the
# pool is empty a new one is made.
def _out() -> Tuple[Any, Any]:
    out = ffi.new("char[]", _CAP)
    return out, ffi.buffer(out)


_pool = [_out() for _ in range(4)]
_POOL_MAX = 16


def credential(ks: Any, iat: int, clock: bool, ttl: int, ver: int, ruid: int, uid: int, gid: int,
               context: bytes, cluster: Optional[bytes], host: Optional[bytes],
               payload: Optional[bytes], extra: Optional[bytes]) -> str:
    """One signed credential (``sa_create_credential``); ``ks`` is the key
    state's ``sc_keyset *``; ``clock``: iat is the current time. Raises
    :class:`Refused` when C refuses an argument (a range, a NUL)."""
    try:
        got = _pool.pop()
    except IndexError:
        got = _out()
    n = _one(ks, iat, clock, ttl, ver, ruid, uid, gid, context, len(context),
             _NULL if cluster is None else cluster, 0 if cluster is None else len(cluster),
             _NULL if host is None else host, 0 if host is None else len(host),
             _NULL if payload is None else payload, 0 if payload is None else len(payload),
             _NULL if extra is None else extra, 0 if extra is None else len(extra), got[0], _CAP)
    if 0 < n <= _CAP:
        tok = got[1][:n].decode()   # base64url and dots: ASCII, the UTF-8 decoder's fast path
        if len(_pool) < _POOL_MAX:
            _pool.append(got)
        return tok
    return _not_in_pool_room(got, n, "sa_create_credential", lambda out, cap: _one(
        ks, iat, clock, ttl, ver, ruid, uid, gid, context, len(context),
        _NULL if cluster is None else cluster, 0 if cluster is None else len(cluster),
        _NULL if host is None else host, 0 if host is None else len(host),
        _NULL if payload is None else payload, 0 if payload is None else len(payload),
        _NULL if extra is None else extra, 0 if extra is None else len(extra), out, cap))


def _not_in_pool_room(got: Tuple[Any, Any], n: int, what: str, call: Callable[[Any, int], int]) -> str:
    """The single calls' answer when C did not write into the pooled buffer
    ``got``: it goes back to the pool; a refusal (``n`` < 0) raises
    :class:`Refused`; a token longer than the buffer is written again by
    ``call(out, cap)`` into a buffer of the length C asked for (+ a digit
    the clock may add)."""
    if len(_pool) < _POOL_MAX:
        _pool.append(got)
    while True:
        if n < 0:
            raise Refused(f"{what}: status {-n}")
        cap = n + 8
        big = ffi.new("char[]", cap)
        n = call(big, cap)
        if 0 <= n <= cap:
            return _unpack(big, n).decode("ascii")


def fixed(ttl: int, ver: int, ruid: int, context: bytes, cluster: Optional[bytes],
          host: bytes) -> Optional[Any]:
    """The constant claims written once (``sa_create_fixed_init``) for
    :func:`fixed_credential`, or None when C does not take them (a range, a
    NUL, invalid UTF-8, strings too long for the struct: the caller creates
    those credentials with :func:`credential`)."""
    t = ffi.new("sa_create_fixed *")
    try:
        rc = _fixed_init(t, ttl, ver, ruid, context, len(context),
                         _NULL if cluster is None else cluster,
                         0 if cluster is None else len(cluster), host, len(host))
    except OverflowError:     # an integer outside int64
        return None
    return t if rc == 0 else None


def fixed_credential(ks: Any, t: Any, now: Optional[int], uid: int, gid: int,
                     payload: Optional[bytes]) -> str:
    """One signed credential from the constant claims ``t`` (:func:`fixed`)
    and this call's values: the very token :func:`credential` writes for
    them. ``now`` None: the issue time is the clock's. Raises
    :class:`Refused` when C refuses an argument, OverflowError for an
    integer outside int64."""
    if payload is None:
        payload = b""
    try:
        got = _pool.pop()
    except IndexError:
        got = _out()
    if now is None:
        n = _fixed_now(ks, t, uid, gid, payload, len(payload), got[0], _CAP)
    else:
        n = _fixed_at(ks, t, now, uid, gid, payload, len(payload), got[0], _CAP)
    if 0 < n <= _CAP:
        tok = got[1][:n].decode()   # base64url and dots: ASCII, the UTF-8 decoder's fast path
        if len(_pool) < _POOL_MAX:
            _pool.append(got)
        return tok
    return _not_in_pool_room(got, n, "sa_create_fixed", lambda out, cap: (
        _fixed_now(ks, t, uid, gid, payload, len(payload), out, cap) if now is None
        else _fixed_at(ks, t, now, uid, gid, payload, len(payload), out, cap)))


#: One item of a batch over constant claims: iat (None: the clock's time),
#: uid, gid, payload (as :func:`fixed_credential` takes them).
FixedItem = Tuple[Optional[int], int, int, Optional[bytes]]

_FIXED_ITEM = struct.Struct("=6q")
assert _FIXED_ITEM.size == ffi.sizeof("sa_create_fixed_item")
#: An item C refuses (uid -1, and an iat with no room for exp).
_REFUSED = _FIXED_ITEM.pack(2 ** 63 - 1, 0, -1, -1, -1, 0)


def fixed_many(ks: Any, t: Any, items: Sequence[FixedItem]) -> Tuple[List[str], Optional[int]]:
    """Credentials from the constant claims ``t`` (:func:`fixed`) in one C
    call (``sa_create_fixed_many``): the tokens :func:`fixed_credential`
    writes for the items, or ([], i) when C refused item i."""
    n = len(items)
    if not n:
        return [], None
    pack = _FIXED_ITEM.pack
    recs: List[bytes] = []
    payloads: List[bytes] = []
    at = 0
    for iat, uid, gid, payload in items:
        try:
            if payload:
                recs.append(pack(0 if iat is None else iat, iat is None, uid, gid, at, len(payload)))
                payloads.append(payload)
                at += len(payload)
            else:
                recs.append(pack(0 if iat is None else iat, iat is None, uid, gid, -1, 0))
        except struct.error:     # an integer outside int64: values C refuses, in their turn
            recs.append(_REFUSED)
    packed = ffi.from_buffer("sa_create_fixed_item[]", b"".join(recs))
    joined = b"".join(payloads)
    return _batch(n, 512 * n + 2 * at, lambda out, cap, ends, info: _fixed_many(
        ks, t, packed, n, joined, len(joined), out, cap, ends, info, info + 1))


def _batch(n: int, cap: int, call: Callable[[Any, int, Any, Any], int]) -> Tuple[List[str], Optional[int]]:
    """A batch call's tokens: ``call(out, cap, ends, info)`` (info[0] the
    room needed, info[1] the item refused) into ``cap`` bytes first, again
    into the room C asked for (+ a digit per token the clock may add); the
    tokens, or ([], i) when C refused item i."""
    ends = ffi.new("size_t[]", n)
    info = ffi.new("size_t[2]")
    while True:
        out = ffi.new("char[]", cap)
        rc = call(out, cap, ends, info)
        if rc != _E_BUFFER or info[0] <= 0:
            break
        cap = info[0] + 8 * n
    if rc:
        return [], info[1]
    text = ffi.buffer(out, ends[n - 1])[:].decode("ascii")
    tokens = []
    start = 0
    for end in ends:
        tokens.append(text[start:end])
        start = end
    return tokens, None


#: One item of a batch: iat, clock, ttl, ver, ruid, uid, gid, context,
#: cluster, host, payload, extra members (as :func:`credential` takes them).
Item = Tuple[int, bool, int, int, int, int, int, bytes, Optional[bytes], Optional[bytes],
             Optional[bytes], Optional[bytes]]

_ITEM = struct.Struct("=17q")
assert _ITEM.size == ffi.sizeof("sa_create_item")


def many(ks: Any, items: Sequence[Item]) -> Tuple[List[str], Optional[int]]:
    """Many credentials in one C call (``sa_create_many``). Returns the
    tokens, or ([], i) when C refused item i."""
    n = len(items)
    if not n:
        return [], None
    pack = _ITEM.pack
    recs: List[bytes] = []
    parts: List[bytes] = []
    add = parts.append
    at = 0
    for i, (iat, clock, ttl, ver, ruid, uid, gid, ctx, cl, host, pl, ex) in enumerate(items):
        o0 = at
        l0 = len(ctx)
        add(ctx)
        at += l0
        if cl is None:
            o1, l1 = -1, 0
        else:
            o1, l1 = at, len(cl)
            add(cl)
            at += l1
        if host is None:
            o2, l2 = -1, 0
        else:
            o2, l2 = at, len(host)
            add(host)
            at += l2
        if pl is None:
            o3, l3 = -1, 0
        else:
            o3, l3 = at, len(pl)
            add(pl)
            at += l3
        if ex is None:
            o4, l4 = -1, 0
        else:
            o4, l4 = at, len(ex)
            add(ex)
            at += l4
        try:
            recs.append(pack(iat, clock, ttl, ver, ruid, uid, gid, o0, l0, o1, l1, o2, l2, o3, l3,
                             o4, l4))
        except struct.error:     # an integer outside int64: C would refuse it
            return [], i
    packed = ffi.from_buffer("sa_create_item[]", b"".join(recs))
    strings = b"".join(parts)
    return _batch(n, 512 * n + 2 * at, lambda out, cap, ends, info: _many(
        ks, packed, n, strings, len(strings), out, cap, ends, info, info + 1))
