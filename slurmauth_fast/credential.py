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

import base64
import functools
import socket
import time
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Tuple

from ._bindings.slurmcred import CONTEXTS
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
    from slurm.jwks."""
    _uint32(uid, "uid")
    _uint32(gid, "gid")
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
    claims: Dict[str, Any] = {"iat": iat, "exp": iat + ttl, "ver": version, "ruid": ruid,
                              "context": context}
    if cluster is not None:
        claims["cluster"] = cluster
    if extra:
        for name in extra:
            if name in _CLAIM_NAMES:
                raise BadArgumentError(f"extra grant {name!r} collides with a credential claim")
        claims.update(extra)
    if identity is None and use_client_ids:
        identity = identity_from_user(uid, gid)
    if identity is not None:
        claims["id"] = identity.to_json()
    claims["uid"] = uid
    claims["gid"] = gid
    claims["host"] = short_hostname() if host is None else host
    if payload:
        claims["payload"] = base64.b64encode(bytes(payload)).decode("ascii")
    # What jansson can hold, checked only where it is not already known: the
    # claim names above are plain ASCII, ver/ruid/uid/gid were range-checked
    # and the payload is base64.
    if iat not in _INT64 or claims["exp"] not in _INT64:
        raise BadArgumentError("claims['iat'] is outside the 64-bit range jansson stores")
    for name in ("context", "cluster", "host", "id"):
        if name in claims:
            _check_grant(claims[name], f"claims[{name!r}]")
    if extra:
        _check_grant(extra, "claims")
    snap = keyring.snapshot()  # one snapshot: the key and its header belong together
    try:
        # every integer was range-checked above: no int64 scan of the text
        return snap.default_key.key.sign_raw(snap.default_header, dumps_compact(claims, check_ints=False))
    except BadArgumentError as e:
        raise SigningError(f"cannot sign credential: {e}") from None


__all__ = ["CONTEXTS", "DEFAULT_TTL", "PROTOCOL_VERSION", "RPC_CONTEXTS", "SUPPORTED_PROTOCOL_VERSIONS",
           "UINT32_MAX", "Credential", "create_credential", "short_hostname"]
