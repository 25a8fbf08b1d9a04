"""auth/slurm credentials: what a verified one holds (:class:`Credential`)
and how to create one byte-for-byte like Slurm (:func:`create_credential`).

A credential is an HS256 JWT (RFC 7519) signed with the keyring's default key.
Slurm builds it with libjwt, which serialises header and claims with jansson
(compact, keys sorted, integers bare, control characters as ``\\u00XX`` with
upper-case hex, non-ASCII as raw UTF-8); :func:`create_credential` writes the
very same bytes, so a token minted here is identical to one slurmctld mints
for the same inputs. Verification is :mod:`slurmauth_fast.verifier`.
"""
from __future__ import annotations

import functools
import socket
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Mapping, Optional, Tuple

from ._bindings import create as _create
from ._bindings.slurmcred import CONTEXTS
from ._bounded import BoundedCache
from .exceptions import BadArgumentError, BadArgumentTypeError, SigningError
from .identity import Identity, identity_from_user
from .jsonutil import dumps_compact
from .keys import SLURM_AUTH_UID_ANY, Keyring

#: Slurm 26.05's protocol version (major << 8), written into the "ver" claim.
PROTOCOL_VERSION = 0x2D00
#: Versions a 26.05 daemon accepts: its own and the three before it.
SUPPORTED_PROTOCOL_VERSIONS: Tuple[int, ...] = (0x2D00, 0x2C00, 0x2B00, 0x2A00)

#: Contexts an RPC credential may carry (slurmctld/slurmd/slurmdbd refuse others).
RPC_CONTEXTS: Tuple[str, ...] = ("auth", "sack")

#: AuthInfo ttl default, seconds.
DEFAULT_TTL = 60

UINT32_MAX = 4294967295

#: Claims create_credential writes itself (``extra`` may not name them).
_CLAIM_NAMES = ("iat", "exp", "ver", "ruid", "uid", "gid", "context", "cluster", "host", "payload")


@dataclass(frozen=True)
class Credential:
    """A verified auth/slurm credential (what Slurm copies into auth_cred_t)."""

    uid: int
    gid: int
    host: str
    cluster: Optional[str]
    context: str
    iat: int
    exp: int
    ver: int                      #: -1 when the token has no "ver" claim
    ruid: int
    payload: Optional[bytes]
    identity: Optional[Identity] = None  #: the "id" object, when the token has one
    kid: Optional[str] = None     #: kid of the key that verified it (None: slurm.key)
    sbcast: Optional[Dict[str, Any]] = None   #: the "sbcast" grants object, if any
    net: Optional[Dict[str, Any]] = None      #: the "net" aliases object, if any


@functools.lru_cache(maxsize=1)
def short_hostname() -> str:
    """Slurm's xshort_hostname(): the host name up to the first dot (read
    once, as Slurm reads it once when the plugin starts)."""
    return socket.gethostname().split(".", 1)[0]


def _uint32(value: Any, name: str) -> int:
    if type(value) is not int:
        raise BadArgumentTypeError(f"{name} must be an integer in 0..{UINT32_MAX}")
    if not 0 <= value <= UINT32_MAX:
        raise BadArgumentError(f"{name} must be an integer in 0..{UINT32_MAX}")
    return value


_INT64 = range(-(2 ** 63), 2 ** 63)


def _check_grant(obj: Any, where: str, depth: int = 0) -> None:
    """What libjwt/jansson can hold: strings that are valid UTF-8 C strings (no
    NUL), 64-bit integers, booleans, null, and objects/arrays of those. Floats
    are refused: Slurm never writes them and jansson formats them differently
    from Python."""
    t = type(obj)
    if t is str:
        if "\x00" in obj:
            raise BadArgumentError(f"{where} contains NUL (libjwt takes C strings)")
        if not obj.isascii():
            try:
                obj.encode("utf-8")
            except UnicodeEncodeError:
                raise BadArgumentError(f"{where} is not valid Unicode (lone surrogate)") from None
    elif t is int:
        if obj not in _INT64:
            raise BadArgumentError(f"{where} is outside the 64-bit range jansson stores")
    elif depth > 32:
        raise BadArgumentError(f"{where} nests too deeply")
    elif isinstance(obj, Mapping):
        for k, v in obj.items():
            if type(k) is not str:
                raise BadArgumentError(f"{where} has a non-string key")
            _check_grant(k, f"{where} key", depth + 1)
            _check_grant(v, f"{where}[{k[:32]!r}]", depth + 1)
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_grant(v, f"{where}[{i}]", depth + 1)
    elif obj is not None and t is not bool:
        raise BadArgumentError(f"{where}: cannot put a {t.__name__} in a credential")


def create_credential(keyring: Keyring, *, uid: int, gid: int, host: Optional[str] = None,
                      context: str = "auth", ruid: int = SLURM_AUTH_UID_ANY,
                      payload: Optional[bytes] = None, ttl: int = DEFAULT_TTL,
                      cluster: Optional[str] = None, version: int = PROTOCOL_VERSION,
                      identity: Optional[Identity] = None, now: Optional[int] = None,
                      extra: Optional[Mapping[str, Any]] = None,
                      use_client_ids: bool = False) -> str:
    """Create an auth/slurm credential exactly as Slurm's ``create_internal()``.

    Claims: iat (``now``), exp (iat + ``ttl``), ver, ruid (4294967295 = anyone
    may verify), context, cluster (when given), uid, gid, host (default: the
    short hostname), payload (padded standard base64, only when non-empty, as
    Slurm skips an empty one) and "id" from ``identity`` (AuthInfo
    use_client_ids, launch credentials); with ``use_client_ids`` and no
    ``identity`` it is built from the local user database for ``uid``/``gid``
    as Slurm does. ``extra`` adds other grants (e.g. "sbcast" or "net"
    objects). The header carries the default key's kid when the keys came
    from slurm.jwks. One C call writes the claims, encodes and signs them
    (``csrc/create.c``)."""
    global _last_fixed
    if host is None:
        host = short_hostname()
    # The constant claims of the previous fast call, and what C wrote of
    # them once: the very same objects prove the types checked then (an
    # equal value could be a bool, a float or a str subclass).
    c_context, c_cluster, c_host, c_ttl, c_version, c_ruid, fixed = _last_fixed
    if (context is c_context and host is c_host and cluster is c_cluster and ttl is c_ttl
            and version is c_version and ruid is c_ruid and type(uid) is int
            and type(gid) is int and identity is None and not extra and not use_client_ids
            and (payload is None or type(payload) is bytes)
            and (now is None or type(now) is int)):
        snap = keyring.snapshot()   # held through the call (a reload may drop it): C uses its keys
        try:
            return _create_fixed(snap.keyset, fixed, now, uid, gid, payload)
        except (OverflowError, _create.Refused):
            pass
    # The common case, checked in one expression: string host, context and
    # cluster, int arguments, no "id" or extra grants; C checks the ranges
    # and reads the clock. Anything else (or an argument C refuses) takes
    # _claims_item, which makes every check in order and raises the first
    # error. (_claims_item starts with the same expression.)
    elif (type(uid) is int and type(gid) is int and type(ruid) is int and type(ttl) is int
            and type(version) is int and type(context) is str and type(host) is str
            and identity is None and not extra and not use_client_ids
            and (cluster is None or type(cluster) is str)
            and (payload is None or type(payload) is bytes)
            and (now is None or type(now) is int) and context):
        # The constant claims, written once per deployment: the checks above
        # made their types exact, so an equal key holds the same values.
        fixed = _fixed_claims.get((context, cluster, host, ttl, version, ruid))
        if fixed is None:
            fixed = _new_fixed_claims(context, cluster, host, ttl, version, ruid)
        if fixed is not _UNFIT:
            _last_fixed = (context, cluster, host, ttl, version, ruid, fixed)
            snap = keyring.snapshot()   # held through the call, as above
            try:
                return _create_fixed(snap.keyset, fixed, now, uid, gid, payload)
            except (OverflowError, _create.Refused):
                pass
    item = _claims_item(uid, gid, host, context, ruid, payload, ttl, cluster, version, identity,
                        now, extra, use_client_ids, False)
    snap = keyring.snapshot()
    try:
        return _create_one(snap.keyset, *item)
    except _create.Refused as e:   # a NUL in a string: the exact error from the checks
        _check_strings(context, cluster, host, identity, extra)
        raise SigningError(f"cannot sign credential: {e}") from None


_create_one = _create.credential
_create_fixed = _create.fixed_credential

#: (context, cluster, host, ttl, version, ruid) -> their claims written once
#: (``sa_create_fixed``), or _UNFIT when C does not take them; a deployment
#: has one or a few. Bounded: once full, other constant claims are written
#: anew for each call.
_fixed_claims: BoundedCache[Tuple[str, Optional[str], str, int, int, int], Any] = BoundedCache(64)
_UNFIT = False
_NONE = object()   # no call yet: nothing is this object
#: The constant claims of the last fast call and their entry of
#: _fixed_claims, replaced whole (one tuple, so a thread reads one
#: consistent entry).
_last_fixed: Tuple[Any, ...] = (_NONE, _NONE, _NONE, _NONE, _NONE, _NONE, _UNFIT)


def _new_fixed_claims(context: str, cluster: Optional[str], host: str, ttl: int, version: int,
                      ruid: int) -> Any:
    """The constant claims for create_credential's fast path (arguments of
    the exact types it checked), kept in :data:`_fixed_claims`; _UNFIT when
    C does not take them (a range, a NUL, a lone surrogate, very long
    strings): such calls take the checks and the general C call."""
    try:
        fixed = _create.fixed(ttl, version, ruid, context.encode(),
                              None if cluster is None else cluster.encode(), host.encode())
    except UnicodeEncodeError:
        fixed = None
    if fixed is None:
        fixed = _UNFIT
    _fixed_claims.put((context, cluster, host, ttl, version, ruid), fixed)
    return fixed


def create_many(keyring: Keyring, items: Iterable[Mapping[str, Any]]) -> List[str]:
    """Many credentials (kiosks, load tools): each item holds
    :func:`create_credential`'s keyword arguments, and gets the very token
    ``create_credential(keyring, **item)`` would return (the same errors
    too; items taking the clock share one reading of it per C call). All are
    signed with one snapshot of the keyring's default key. Each run of
    common-case items sharing their constant claims is written in one C call
    (``sa_create_fixed_many``); from the first other item on (or an item C
    refuses), the rest are checked and written in one C call
    (``sa_create_many``)."""
    kws = items if type(items) is list else list(items)
    snap = keyring.snapshot()   # one key for the whole batch, held through the calls
    ks = snap.keyset
    tokens: List[str] = []
    n = len(kws)
    done = 0
    while done < n:
        fixed = None
        run: List[_create.FixedItem] = []
        try:
            for i in range(done, n):
                got = _fixed_item(**kws[i])
                if got is None or (fixed is not None and got[0] is not fixed):
                    break
                fixed = got[0]
                run.append(got[1])
        except TypeError:   # other keywords, or none: _claims_item raises create_credential's error
            pass
        if not run:
            break
        more, failed = _create.fixed_many(ks, fixed, run)
        if failed is not None:
            break           # C refused an item: this run and the rest take the checks below
        tokens += more
        done += len(run)
    if done == n:
        return tokens
    rest = kws[done:]
    prepared = [_claims_item(**kw) for kw in rest]   # each one checked as create_credential checks it
    more, failed = _create.many(ks, prepared)
    if failed is not None:
        _claims_item(**rest[failed], fast=False)       # raises that item's error
        create_credential(keyring, **rest[failed])
        raise SigningError(f"cannot sign credential #{done + failed}")
    return tokens + more


def _fixed_item(*, uid: int, gid: int, host: Optional[str] = None,
                context: str = "auth", ruid: int = SLURM_AUTH_UID_ANY,
                payload: Optional[bytes] = None, ttl: int = DEFAULT_TTL,
                cluster: Optional[str] = None, version: int = PROTOCOL_VERSION,
                identity: Optional[Identity] = None, now: Optional[int] = None,
                extra: Optional[Mapping[str, Any]] = None,
                use_client_ids: bool = False) -> Optional[Tuple[Any, _create.FixedItem]]:
    """create_many's item as create_credential's constant-claims path takes
    it (the same matches and checks): its constant claims written once and
    (now, uid, gid, payload); None when the item is not of the common case."""
    global _last_fixed
    if host is None:
        host = short_hostname()
    c_context, c_cluster, c_host, c_ttl, c_version, c_ruid, fixed = _last_fixed
    if not (context is c_context and host is c_host and cluster is c_cluster and ttl is c_ttl
            and version is c_version and ruid is c_ruid):
        if not (type(ruid) is int and type(ttl) is int and type(version) is int
                and type(context) is str and type(host) is str
                and (cluster is None or type(cluster) is str) and context):
            return None
        fixed = _fixed_claims.get((context, cluster, host, ttl, version, ruid))
        if fixed is None:
            fixed = _new_fixed_claims(context, cluster, host, ttl, version, ruid)
        if fixed is _UNFIT:
            return None
        _last_fixed = (context, cluster, host, ttl, version, ruid, fixed)
    if (type(uid) is int and type(gid) is int and identity is None and not extra
            and not use_client_ids and (payload is None or type(payload) is bytes)
            and (now is None or type(now) is int)):
        return fixed, (now, uid, gid, payload)
    return None


_I64_MIN, _I64_MAX = -(2 ** 63), 2 ** 63 - 1


def _claims_item(uid: int, gid: int, host: Optional[str] = None, context: str = "auth",
                 ruid: int = SLURM_AUTH_UID_ANY, payload: Optional[bytes] = None,
                 ttl: int = DEFAULT_TTL, cluster: Optional[str] = None,
                 version: int = PROTOCOL_VERSION, identity: Optional[Identity] = None,
                 now: Optional[int] = None, extra: Optional[Mapping[str, Any]] = None,
                 use_client_ids: bool = False, fast: bool = True) -> _create.Item:
    """create_credential's checks (in its order, with its messages) and its
    arguments as the C creator takes them. ``fast``: first try
    create_credential's one-expression check (C checks the ranges then; an
    item it refuses is checked again with ``fast`` False)."""
    if host is None:
        host = short_hostname()
    if (fast and type(uid) is int and type(gid) is int and type(ruid) is int and type(ttl) is int
            and type(version) is int and type(context) is str and type(host) is str
            and identity is None and not extra and not use_client_ids
            and (cluster is None or type(cluster) is str)
            and (payload is None or type(payload) is bytes)
            and (now is None or type(now) is int) and context):
        try:
            return (0 if now is None else now, now is None, ttl, version, ruid, uid, gid,
                    context.encode(), None if cluster is None else cluster.encode(),
                    host.encode(), payload or None, None)
        except UnicodeEncodeError:
            pass
    if type(uid) is not int or not 0 <= uid <= UINT32_MAX:
        _uint32(uid, "uid")
    if type(gid) is not int or not 0 <= gid <= UINT32_MAX:
        _uint32(gid, "gid")
    if type(ruid) is not int or not 0 <= ruid <= UINT32_MAX:
        _uint32(ruid, "ruid")
    if type(ttl) is not int or ttl <= 0:
        raise BadArgumentError("ttl must be a positive integer (seconds)")
    if type(version) is not int or not 0 <= version <= 0xFFFF:
        raise BadArgumentError("version must be a uint16 protocol version")
    if not isinstance(context, str) or not context:
        raise BadArgumentError("context must be a non-empty string")
    iat = int(time.time()) if now is None else now
    if type(iat) is not int:
        raise BadArgumentError("now must be an integer unix time")
    if extra:
        for name in extra:
            if name in _CLAIM_NAMES[:10]:
                raise BadArgumentError(f"extra grant {name!r} collides with a credential claim")
    if identity is None and use_client_ids:
        identity = identity_from_user(uid, gid)
    pl = (payload if type(payload) is bytes else bytes(payload)) if payload else None
    exp = iat + ttl
    if not _I64_MIN <= iat <= _I64_MAX or exp > _I64_MAX:
        raise BadArgumentError("claims['iat'] is outside the 64-bit range jansson stores")
    if (identity is None and not extra and type(host) is str
            and (cluster is None or type(cluster) is str)):
        # the common case: every claim is written by C from the arguments
        try:
            return (iat, False, ttl, version, ruid, uid, gid, context.encode(),
                    None if cluster is None else cluster.encode(), host.encode(), pl, None)
        except UnicodeEncodeError:
            _check_strings(context, cluster, host, identity, extra)
            raise
    # "id", extra grants, a host or cluster that is not a string: serialised
    # here as members C merges in (after create_credential's checks of them)
    _check_strings(context, cluster, host, identity, extra)
    mem: List[Tuple[str, Any]] = []
    if extra:
        mem.extend(item for item in extra.items() if identity is None or item[0] != "id")
    if identity is not None:
        mem.append(("id", identity.to_json()))
    c_cluster = c_host = None
    if type(cluster) is str:
        c_cluster = cluster.encode()
    elif cluster is not None:
        mem.append(("cluster", cluster))
    if type(host) is str:
        c_host = host.encode()
    else:
        mem.append(("host", host))
    try:
        records = _create.members([(name.encode(), dumps_compact(value)) for name, value in mem])
    except BadArgumentError as e:
        raise SigningError(f"cannot sign credential: {e}") from None
    return (iat, False, ttl, version, ruid, uid, gid, context.encode(), c_cluster, c_host, pl,
            records)


def identity_members(identity: Identity) -> bytes:
    """The "id" claim as the extra member record the C creator takes (what
    create_credential signs for ``identity`` with no other extra grants), for
    callers that sign in C themselves (the kiosk's C loop)."""
    return _create.members([(b"id", dumps_compact(identity.to_json()))])


def _check_strings(context: Any, cluster: Any, host: Any, identity: Optional[Identity],
                   extra: Optional[Mapping[str, Any]]) -> None:
    """What jansson can hold, for the claims that can hold anything, in
    create_credential's order: context, cluster, host, id, the extra grants."""
    _check_grant(context, "claims['context']")
    if cluster is not None:
        _check_grant(cluster, "claims['cluster']")
    _check_grant(short_hostname() if host is None else host, "claims['host']")
    if identity is not None:
        _check_grant(identity.to_json(), "claims['id']")
    elif extra and "id" in extra:
        _check_grant(extra["id"], "claims['id']")
    if extra:
        _check_grant(extra, "claims")


__all__ = ["CONTEXTS", "DEFAULT_TTL", "PROTOCOL_VERSION", "RPC_CONTEXTS", "SUPPORTED_PROTOCOL_VERSIONS",
           "UINT32_MAX", "Credential", "create_credential", "create_many", "short_hostname"]
