"""The Python credential writer slurmauth_fast used before creation moved to C
(csrc/create.c), kept verbatim as an oracle: tokens.create_credential must
write the same bytes, or raise the same errors, for every input."""
from __future__ import annotations

import base64
import time
from typing import Any, Dict, Mapping, Optional

from slurmauth_fast.errors import BadArgumentError, SigningError
from slurmauth_fast.identity import Identity, identity_from_user
from slurmauth_fast.jsonutil import dumps_compact
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring
from slurmauth_fast.credential import (_CLAIM_NAMES, _INT64, DEFAULT_TTL, PROTOCOL_VERSION, _check_grant,
                                   _uint32, short_hostname)


def reference_create_credential(keyring: Keyring, *, uid: int, gid: int, host: Optional[str] = None,
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
            if name in _CLAIM_NAMES[:10]:
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
    # and the payload is base64; walking the whole dict took a third of the time.
    if iat not in _INT64 or claims["exp"] not in _INT64:
        raise BadArgumentError("claims['iat'] is outside the 64-bit range jansson stores")
    for name in ("context", "cluster", "host", "id"):
        if name in claims:
            _check_grant(claims[name], f"claims[{name!r}]")
    if extra:
        _check_grant(extra, "claims")
    snap = keyring.snapshot()  # one snapshot: the key and its header belong together
    try:
        return snap.default_key.key.sign_raw(snap.default_header, dumps_compact(claims))
    except BadArgumentError as e:
        raise SigningError(f"cannot sign credential: {e}") from None
