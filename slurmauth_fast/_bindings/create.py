"""Credential creation in C (``csrc/create.c``): one call per credential,
one call per batch. Callers pass what is already checked and encoded:
integers in range, strings as UTF-8 bytes, extra members serialised and
sorted (:func:`members`); C writes the claims as libjwt/jansson would,
base64url-encodes them behind the key's precomputed header and signs them
with the key's precomputed HMAC states."""
from __future__ import annotations

from typing import Any, List, Optional, Sequence, Tuple

from ._ffi import ffi, lib

#: Output room tried first; a credential longer than this is retried with
#: the exact length C reports.
_CAP = 1024
_alloc = ffi.new_allocator(should_clear_after_alloc=False)
_one = lib.sa_create_credential
_many = lib.sa_create_many
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


def _buffer() -> Tuple[Any, Any]:
    """An output buffer of _CAP bytes and a size_t for the length."""
    return ffi.new("char[]", _CAP), ffi.new("size_t *")


# Output buffers between calls: taking one is a list pop, atomic under the
# GIL, so two threads (C runs without the GIL) never share one; when the
# pool is empty a new one is made.
_pool = [_buffer() for _ in range(4)]
_POOL_MAX = 16


def credential(ks: Any, iat: int, exp: int, ver: int, ruid: int, uid: int, gid: int,
               context: bytes, cluster: Optional[bytes], host: Optional[bytes],
               payload: Optional[bytes], extra: Optional[bytes]) -> str:
    """One signed credential (``sa_create_credential``); ``ks`` is the key
    state's ``sc_keyset *``. Raises :class:`Refused` on bad strings."""
    try:
        got = _pool.pop()
    except IndexError:
        got = _buffer()
    out, outlen = got
    rc = _one(ks, iat, exp, ver, ruid, uid, gid, context, len(context),
              _NULL if cluster is None else cluster, 0 if cluster is None else len(cluster),
              _NULL if host is None else host, 0 if host is None else len(host),
              _NULL if payload is None else payload, 0 if payload is None else len(payload),
              _NULL if extra is None else extra, 0 if extra is None else len(extra),
              out, _CAP, outlen)
    if not rc:
        tok = _unpack(out, outlen[0]).decode("ascii")
        if len(_pool) < _POOL_MAX:
            _pool.append(got)
        return tok
    if len(_pool) < _POOL_MAX:
        _pool.append(got)
    if rc != _E_BUFFER:
        raise Refused(f"sa_create_credential: status {rc}")
    cap = outlen[0]
    big = ffi.new("char[]", cap)
    rc = _one(ks, iat, exp, ver, ruid, uid, gid, context, len(context),
              _NULL if cluster is None else cluster, 0 if cluster is None else len(cluster),
              _NULL if host is None else host, 0 if host is None else len(host),
              _NULL if payload is None else payload, 0 if payload is None else len(payload),
              _NULL if extra is None else extra, 0 if extra is None else len(extra),
              big, cap, outlen)
    if rc:
        raise Refused(f"sa_create_credential: status {rc}")
    return _unpack(big, outlen[0]).decode("ascii")


#: One item of a batch: iat, exp, ver, ruid, uid, gid, context, cluster,
#: host, payload, extra members (as :func:`credential` takes them).
Item = Tuple[int, int, int, int, int, int, bytes, Optional[bytes], Optional[bytes],
             Optional[bytes], Optional[bytes]]


def many(ks: Any, items: Sequence[Item]) -> Tuple[List[str], Optional[int]]:
    """Many credentials in one C call (``sa_create_many``). Returns the
    tokens, or ([], i) when C refused item i."""
    n = len(items)
    if not n:
        return [], None
    recs = ffi.new("sa_create_item[]", n)
    parts = []
    at = 0
    estimate = 0
    for rec, (iat, exp, ver, ruid, uid, gid, ctx, cl, host, pl, ex) in zip(recs, items):
        rec.iat, rec.exp, rec.ver, rec.ruid, rec.uid, rec.gid = iat, exp, ver, ruid, uid, gid
        offs: List[int] = []
        for s in (ctx, cl, host, pl, ex):
            if s is None:
                offs += (-1, 0)
            else:
                offs += (at, len(s))
                parts.append(s)
                at += len(s)
        (rec.context_off, rec.context_len, rec.cluster_off, rec.cluster_len, rec.host_off,
         rec.host_len, rec.payload_off, rec.payload_len, rec.members_off, rec.members_len) = offs
        estimate += 160 + 2 * (len(ctx) + len(cl or b"") + len(host or b"") + len(pl or b"")
                               + len(ex or b""))
    strings = b"".join(parts)
    ends = ffi.new("size_t[]", n)
    info = ffi.new("size_t[2]")
    cap = estimate
    for _ in range(2):
        out = _alloc("char[]", cap)
        rc = _many(ks, recs, n, strings, len(strings), out, cap, ends, info, info + 1)
        if rc != _E_BUFFER:
            break
        cap = info[0]
    if rc:
        return [], info[1]
    buf = ffi.buffer(out, ends[n - 1])[:].decode("ascii")
    tokens = []
    start = 0
    for end in ends:
        tokens.append(buf[start:end])
        start = end
    return tokens, None
