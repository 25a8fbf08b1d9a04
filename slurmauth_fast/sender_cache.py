"""Turning the C verifier's result into a :class:`~slurmauth_fast.credential.Credential`,
with a per-sender cache of the fields a sender repeats.

A result whose host, cluster and payload have given lengths is read by a
:class:`ResultLayout`: iat and exp, the fields a sender repeats from token to
token (ver, ruid, uid, gid, context, key index, objects, shape: as C wrote
them, as one bytes object), host + cluster, and the payload. Tokens from one
cluster share those lengths, so the last layout used is tried first.

Each layout's ``cache`` maps the repeated fields and names (as bytes) of
credentials read with it that had no "id"/"sbcast"/"net" object to the key
snapshot they were verified with and their ``__dict__``; ``last`` is the
entry hit last, as (snapshot, repeated, names, dict), compared first (two
bytes compares cost less than hashing them for the lookup). The snapshot is
held as its ``wref`` (a weak reference, compared by identity), so the cache
never keeps a retired key set, and its key material, alive. A token whose
bytes are there (with the same snapshot: a reload may renumber kids) gets a
copy of that dict with its own iat, exp and payload: no other field needs
decoding. Only verified credentials get in, so only a key holder can fill
it; once it holds :data:`CACHE_MAX` senders, others are read in full (a miss
costs one dict lookup), and an entry verified with keys since reloaded is
dropped when met.
"""
from __future__ import annotations

import struct
from typing import Any, Dict, Optional, Tuple

from ._bindings import slurmcred as _sc
from ._bounded import BoundedCache
from .credential import Credential
from .exceptions import ClaimsError, IdentityError
from .identity import parse_identity
from .jsonutil import loads_object

#: Senders remembered per layout.
CACHE_MAX = 4096
#: Layouts remembered (distinct host/cluster/payload length triples).
LAYOUTS_MAX = 4096

_new = object.__new__
_set = object.__setattr__
_CTX = _sc.CONTEXTS


class ResultLayout:
    """How to read a result whose host, cluster and payload have given lengths."""

    __slots__ = ("shape", "unpack", "read", "cluster", "payload", "cache", "last")

    def __init__(self, hl: int, cl: int, pl: int) -> None:
        self.cluster = cl >= 0
        self.payload = pl >= 0
        self.shape = _sc.shape_of(hl, cl, pl)
        self.unpack, self.read = _sc.result_readers(hl, cl, pl)
        self.cache: BoundedCache[Tuple[bytes, bytes], Tuple[Any, Dict[str, Any]]] = \
            BoundedCache(CACHE_MAX)
        self.last: Tuple[Any, Optional[bytes], Optional[bytes], Dict[str, Any]] = (
            None, None, None, {})


_layouts: BoundedCache[Tuple[int, int, int], ResultLayout] = BoundedCache(LAYOUTS_MAX)
_last = [ResultLayout(0, -1, -1)]


def layout(lens: Tuple[int, int, int]) -> ResultLayout:
    """The layout for these (host, cluster, payload) lengths, made the one tried first."""
    lay = _layouts.get(lens)
    if lay is None:
        lay = ResultLayout(*lens)
        _layouts.put(lens, lay)
    _last[0] = lay
    return lay


def last_layout() -> ResultLayout:
    """The layout tried first (the last one used)."""
    return _last[0]


def credential(buf: bytearray, base: int, snap: Any) -> Credential:
    """The Credential of the verified C result at ``buf[base:]`` (``snap``:
    the key snapshot it was verified with)."""
    lay = _last[0]
    try:
        iat, exp, repeated, names, payload = lay.unpack(buf, base)
    except struct.error:          # this layout runs past the buffer: not the token's
        return _credential_read(buf, base, snap)
    st, rep0, names0, d = lay.last
    wref = snap.wref
    if repeated != rep0 or names != names0 or st is not wref:
        key = (repeated, names)
        hit = lay.cache.get(key)
        if hit is None or hit[0] is not wref:
            if hit is not None:           # verified with keys since reloaded
                lay.cache.pop(key, None)
            return _credential_read(buf, base, snap)
        d = hit[1]
        lay.last = (wref, repeated, names, d)    # one tuple, stored at once
    d = d.copy()
    d["iat"] = iat
    d["exp"] = exp
    if lay.payload:
        d["payload"] = payload
    cred = _new(Credential)
    _set(cred, "__dict__", d)
    return cred


def _credential_read(buf: bytearray, base: int, snap: Any) -> Credential:
    """:func:`credential` for a result not in the layout's cache: every field
    read and decoded (and the "id"/"sbcast"/"net" objects parsed)."""
    lay = _last[0]
    try:
        (iat, exp, ver, ruid, uid, gid, ctx, kidx, objects, shape,
         host, cluster, payload) = lay.read(buf, base)
    except struct.error:          # this layout runs past the buffer: not the token's
        shape = None
    if shape != lay.shape:        # other lengths (or objects, shape -1): look the layout up
        lay = layout(_sc.lengths(buf, base))
        (iat, exp, ver, ruid, uid, gid, ctx, kidx, objects, shape,
         host, cluster, payload) = lay.read(buf, base)
    identity = sbcast = net = None
    if objects:
        io, il, so, sl, no, nl = _sc.objects(buf, base)
        if objects & _sc.OBJ_ID:
            identity = parse_identity(loads_object(bytes(buf[base + io:base + io + il]),
                                                   IdentityError, "claim 'id'"))
        if objects & _sc.OBJ_SBCAST:
            sbcast = loads_object(bytes(buf[base + so:base + so + sl]), ClaimsError, "claim 'sbcast'")
        if objects & _sc.OBJ_NET:
            net = loads_object(bytes(buf[base + no:base + no + nl]), ClaimsError, "claim 'net'")
    cred = _new(Credential)
    # The C scanner has validated the UTF-8 of host and cluster. Fields left
    # out of the instance dict (identity, sbcast, net when absent) read as the
    # dataclass defaults (None): equality, repr and asdict see the same values.
    d = {"uid": uid, "gid": gid, "host": host.decode(),
         "cluster": cluster.decode() if lay.cluster else None, "context": _CTX[ctx],
         "iat": iat, "exp": exp, "ver": ver, "ruid": ruid,
         "payload": payload if lay.payload else None, "kid": snap.kids[kidx]}
    if objects:
        d["identity"] = identity
        d["sbcast"] = sbcast
        d["net"] = net
    elif shape == lay.shape and len(lay.cache) < lay.cache.maxsize:
        # the next token from this sender will read like this one
        _, _, repeated, names, _ = lay.unpack(buf, base)
        d0 = dict(d, iat=0, exp=0, payload=None)
        lay.cache.put((repeated, names), (snap.wref, d0))
        lay.last = (snap.wref, repeated, names, d0)
    _set(cred, "__dict__", d)
    return cred
