"""auth/slurm credentials: create them byte-for-byte like Slurm, verify them
with Slurm's rules in one C call.

A credential is an HS256 JWT (RFC 7519) signed with the keyring's default key.
Slurm builds it with libjwt, which serialises header and claims with jansson
(compact, keys sorted, integers bare, control characters as ``\\u00XX`` with
upper-case hex, non-ASCII as raw UTF-8); :func:`create_credential` writes the
very same bytes, so a token minted here is identical to one slurmctld mints
for the same inputs.

Verification (:class:`Verifier`) runs entirely in C (``csrc/slurmcred.c``), in
the order of Slurm's ``decode_jwt()``: size limit, split, header, key by kid
(or the default key), key expiry, HMAC in constant time, alg exactly HS256,
claims, exp against now, ruid against the verifier's uid, the required claims
iat/uid/gid/host/context, the allowed context, the payload decode and the
uid/gid range. Python only turns the C result into a :class:`Credential`
(and parses the "id" object when present).
"""
from __future__ import annotations

import array
import functools
import os
import socket
import struct
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterable, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, Union

from ._bindings import create as _create
from ._core import ffi, lib
from .errors import (AlgorithmError, AudienceError, BadArgumentError, ClaimsError, ContextError,
                     CredentialError, ExpiredError, HeaderError, IdentityError, KeyExpiredError,
                     KeyIdError, NativeBufferError, PayloadError, SigningError, error_for_status,
                     register_status)
from .identity import Identity, identity_from_user, parse_identity
from .jsonutil import dumps_compact, loads_object
from .jws import DEFAULT_MAX_TOKEN, TokenLike, as_token_bytes
from .keys import SLURM_AUTH_UID_ANY, Keyring

#: Slurm 26.05's protocol version (major << 8), written into the "ver" claim.
PROTOCOL_VERSION = 0x2D00
#: Versions a 26.05 daemon accepts: its own and the three before it.
SUPPORTED_PROTOCOL_VERSIONS: Tuple[int, ...] = (0x2D00, 0x2C00, 0x2B00, 0x2A00)

#: Contexts an RPC credential may carry (slurmctld/slurmd/slurmdbd refuse others).
RPC_CONTEXTS: Tuple[str, ...] = ("auth", "sack")
#: Every context Slurm signs, in the C core's SC_CTX_* order.
CONTEXTS: Tuple[str, ...] = ("auth", "sack", "launch", "sbcast", "net")

#: AuthInfo ttl default, seconds.
DEFAULT_TTL = 60

UINT32_MAX = 4294967295

_CLAIM_NAMES = ("iat", "exp", "ver", "ruid", "uid", "gid", "context", "cluster", "host",
                "payload", "id", "sbcast", "net")

# ---- C status codes 20-59 --------------------------------------------------
_STATUSES = {
    lib.SC_E_HEADER_JSON: (HeaderError, "JOSE header is not a strict JSON object"),
    lib.SC_E_HEADER_DUP: (HeaderError, "JOSE header has a duplicate member"),
    lib.SC_E_ALG_MISSING: (AlgorithmError, "JOSE header has no alg string"),
    lib.SC_E_ALG: (AlgorithmError, "alg is not exactly HS256"),
    lib.SC_E_TYP: (HeaderError, "typ is not JWT"),
    lib.SC_E_KID_TYPE: (KeyIdError, "kid is not a string"),
    lib.SC_E_KID_UNKNOWN: (KeyIdError, "kid names no loaded key"),
    lib.SC_E_NO_KEY: (KeyIdError, "no default key loaded"),
    lib.SC_E_KEY_EXPIRED: (KeyExpiredError, "token received for an expired key"),
    lib.SC_E_CLAIMS_JSON: (ClaimsError, "claims are not a strict JSON object"),
    lib.SC_E_CLAIM_DUP: (ClaimsError, "duplicate claim"),
    lib.SC_E_INT_TYPE: (ClaimsError, "claim must be a JSON integer"),
    lib.SC_E_INT_RANGE: (ClaimsError, "integer claim out of range"),
    lib.SC_E_STR_TYPE: (ClaimsError, "claim must be a JSON string"),
    lib.SC_E_EXPIRED: (ExpiredError, "credential expired"),
    lib.SC_E_EXP_MISSING: (ClaimsError, "required claim exp is missing"),
    lib.SC_E_RUID_MISSING: (ClaimsError, "required claim ruid is missing"),
    lib.SC_E_RUID: (AudienceError, "credential is restricted to another uid (ruid)"),
    lib.SC_E_IAT_MISSING: (ClaimsError, "required claim iat is missing"),
    lib.SC_E_UID_MISSING: (ClaimsError, "required claim uid is missing"),
    lib.SC_E_GID_MISSING: (ClaimsError, "required claim gid is missing"),
    lib.SC_E_HOST_MISSING: (ClaimsError, "required claim host is missing"),
    lib.SC_E_CONTEXT_MISSING: (ClaimsError, "required claim context is missing"),
    lib.SC_E_CONTEXT: (ContextError, "context not accepted by this verifier"),
    lib.SC_E_PAYLOAD: (PayloadError, "payload is not padded standard base64"),
    lib.SC_E_DEPTH: (ClaimsError, "claims nest too deeply"),
    lib.SC_E_UTF8: (ClaimsError, "invalid UTF-8, control character or escape in a string"),
    lib.SC_E_TOO_MANY: (ClaimsError, "too many unknown claims"),
    lib.SC_E_NAME_LONG: (ClaimsError, "claim name too long"),
    lib.SC_E_SCRATCH: (NativeBufferError, "scratch buffer too small"),
    lib.SC_E_OBJ_TYPE: (ClaimsError, "claim must be a JSON object"),
    lib.SC_E_BATCH_SPLIT: (BadArgumentError, "separated batch does not hold exactly n tokens"),
}
for _code, (_exc, _msg) in _STATUSES.items():
    register_status(_code, _exc, _msg)


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


# ---- creation ----------------------------------------------------------------

@functools.lru_cache(maxsize=1)
def short_hostname() -> str:
    """Slurm's xshort_hostname(): the host name up to the first dot (read
    once, as Slurm reads it once when the plugin starts)."""
    return socket.gethostname().split(".", 1)[0]


def _uint32(value: Any, name: str) -> int:
    if type(value) is not int or not 0 <= value <= UINT32_MAX:
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
    if host is None:
        host = short_hostname()
    # The common case, checked in one expression: string host, context and
    # cluster, int arguments, no "id" or extra grants; C checks the ranges
    # and reads the clock. Anything else (or an argument C refuses) takes
    # _claims_item, which makes every check in order and raises the first
    # error. (_claims_item starts with the same expression.)
    if (type(uid) is int and type(gid) is int and type(ruid) is int and type(ttl) is int
            and type(version) is int and type(context) is str and type(host) is str
            and identity is None and not extra and not use_client_ids
            and (cluster is None or type(cluster) is str)
            and (payload is None or type(payload) is bytes)
            and (now is None or type(now) is int) and context):
        try:
            return _create_one(keyring._state.ks, 0 if now is None else now, now is None, ttl,
                               version, ruid, uid, gid, context.encode(),
                               None if cluster is None else cluster.encode(), host.encode(),
                               payload or None, None)
        except (UnicodeEncodeError, OverflowError, _create.Refused):
            pass
    item = _claims_item(uid, gid, host, context, ruid, payload, ttl, cluster, version, identity,
                        now, extra, use_client_ids, False)
    try:
        return _create_one(keyring._state.ks, *item)
    except _create.Refused as e:   # a NUL in a string: the exact error from the checks
        _check_strings(context, cluster, host, identity, extra)
        raise SigningError(f"cannot sign credential: {e}") from None


_create_one = _create.credential


def create_many(keyring: Keyring, items: Iterable[Mapping[str, Any]]) -> List[str]:
    """Many credentials in one C call (kiosks, load tools): each item holds
    :func:`create_credential`'s keyword arguments, and gets the very token
    ``create_credential(keyring, **item)`` would return (the same errors
    too). All are signed with one snapshot of the keyring's default key."""
    kws = items if type(items) is list else list(items)
    prepared = [_claims_item(**kw) for kw in kws]   # each one checked as create_credential checks it
    tokens, failed = _create.many(keyring._state.ks, prepared)
    if failed is not None:
        _claims_item(**kws[failed], fast=False)       # raises that item's error
        create_credential(keyring, **kws[failed])
        raise SigningError(f"cannot sign credential #{failed}")
    return tokens


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


# ---- verification ------------------------------------------------------------

# sc_result as Python reads it: 11 int64 (err_claim .. shape), the lengths of
# host, cluster and payload, the id/sbcast/net offsets and lengths; then, at
# sc_result_space(), the bytes of host, cluster and payload back to back
# (_Layout and _credential below).
_HEAD = struct.Struct("=11q")
_LENS = struct.Struct("=3q")
_OBJECTS = struct.Struct("=6q")
_LENS_AT = _HEAD.size
_OBJECTS_AT = _LENS_AT + _LENS.size
assert _OBJECTS_AT + _OBJECTS.size == ffi.sizeof("sc_result")
_OUT = lib.sc_result_space()
_SHAPE_LIMIT = lib.SC_SHAPE_LIMIT
_sc_verify = lib.sc_verify
_BASE_SCRATCH = 8192
_BATCH_KEEP = 4 << 20   # largest batch scratch a thread keeps between calls


def _context_mask(contexts: Union[str, Iterable[str]]) -> int:
    if isinstance(contexts, str):
        contexts = (contexts,)
    mask = 0
    for c in contexts:
        if c not in CONTEXTS:
            raise BadArgumentError(f"unknown credential context {c!r}; known: {', '.join(CONTEXTS)}")
        mask |= 1 << CONTEXTS.index(c)
    if not mask:
        raise BadArgumentError("at least one context must be allowed")
    return mask


class Verifier:
    """Verifies auth/slurm credentials for one verifier uid and set of contexts.

    ``verifier_uid`` (default: this process's uid) is what a token's ruid must
    equal unless it is 4294967295. ``contexts`` are the contexts accepted:
    ("auth", "sack") for RPCs (Slurm's rule), ("launch",) for job credentials,
    ("sbcast",) or ("net",) for those. Thread-safe: each thread has its own
    scratch buffer, and the keyring may be reloaded at any time."""

    def __init__(self, keyring: Keyring, *, verifier_uid: Optional[int] = None,
                 contexts: Union[str, Sequence[str]] = RPC_CONTEXTS,
                 max_len: int = DEFAULT_MAX_TOKEN) -> None:
        if not isinstance(keyring, Keyring):
            raise BadArgumentError("keyring must be a Keyring")
        if type(max_len) is not int or max_len <= 0:
            raise BadArgumentError("max_len must be a positive integer")
        self.keyring = keyring
        self.verifier_uid = _uint32(os.getuid() if verifier_uid is None else verifier_uid,
                                    "verifier_uid")
        self.contexts = (contexts,) if isinstance(contexts, str) else tuple(contexts)
        self.max_len = max_len
        self._policy = self._make_policy(_context_mask(self.contexts))
        self._policies: Dict[Any, Any] = {}
        self._tls = threading.local()

    def _make_policy(self, mask: int) -> Any:
        pol = ffi.new("sc_policy *")
        pol.max_len = self.max_len
        pol.verifier_uid = self.verifier_uid
        pol.contexts = mask
        return pol

    def _policy_for(self, context: Union[str, Sequence[str]]) -> Any:
        key = context if isinstance(context, str) else tuple(context)
        pol = self._policies.get(key)
        if pol is None:
            pol = self._policies[key] = self._make_policy(_context_mask(key))
        return pol

    def _scratch(self, need: int) -> Tuple[bytearray, Any, int, int]:
        """This thread's scratch buffer (grown to ``need`` bytes), its cffi
        pointer, its size and the longest token it surely fits."""
        tls = self._tls
        s = getattr(tls, "s", None)
        if s is None or s[2] < need:
            size = max(need, _BASE_SCRATCH)
            buf = bytearray(size)
            small = size // 4 - 64  # sc_scratch_need(n) < 4n + 64 + 64
            assert lib.sc_scratch_need(small) <= size
            s = tls.s = (buf, ffi.from_buffer(buf), size, small)
        return s

    def _batch_work(self, need: int) -> Tuple[Any, int]:
        """This thread's working area for sc_verify_many (two token regions),
        grown to ``need`` bytes and kept while at most _BATCH_KEEP: a fresh
        megabyte per call costs page faults and zeroing the C work waits on."""
        w = getattr(self._tls, "w", None)
        if w is None or w[2] < need:
            buf, ptr, _ = _aligned(need, 16)
            w = (buf, ptr, need)   # the bytearray stays referenced while ptr is used
            if need <= _BATCH_KEEP:
                self._tls.w = w
        return w[1], w[2]

    def verify(self, token: TokenLike, *, now: Optional[int] = None,
               context: Optional[Union[str, Sequence[str]]] = None) -> Credential:
        """Verify one credential; raise a CredentialError subclass naming the
        first rule broken (in Slurm's order). ``context`` narrows the accepted
        contexts for this call."""
        if type(token) is bytes:
            tok = token
        elif type(token) is str:
            try:
                tok = token.encode("ascii")
            except UnicodeEncodeError:
                raise HeaderError("token contains non-ASCII characters") from None
        else:
            tok = as_token_bytes(token)
        if now is None:
            when = -1
        elif type(now) is int and now >= 0:
            when = now
        else:
            raise BadArgumentError("now must be a non-negative integer unix time")
        n = len(tok)
        try:
            buf, ptr, cap, small = self._tls.s
        except AttributeError:
            buf, ptr, cap, small = self._scratch(0)
        if n > small and n <= self.max_len:
            buf, ptr, cap, small = self._scratch(lib.sc_scratch_need(n))
        state = self.keyring._state
        rc = _sc_verify(state.ks, self._policy if context is None else self._policy_for(context),
                        tok, n, when, ptr, cap)
        if rc:
            raise _failure(rc, buf, 0)
        return _credential(buf, 0, state)

    def verify_many(self, tokens: Sequence[TokenLike], *,
                    now: Optional[int] = None) -> "VerifiedBatch":
        """Verify many credentials in one C call (the GIL is released for it;
        pairs of tokens have their MACs computed together). Every token goes
        through :meth:`verify`'s rules in :meth:`verify`'s order.

        The result keeps per-token columns (status, uid, gid) filled by C, so
        no Python object is built per token unless asked for: a controller
        shim admitting RPCs by uid reads the columns, and builds the
        :class:`Credential` (or error) of a token only when it needs more."""
        if now is not None and (type(now) is not int or now < 0):
            raise BadArgumentError("now must be a non-negative integer unix time")
        if type(tokens) is not list and type(tokens) is not tuple:
            tokens = list(tokens)
        n = len(tokens)
        packed = _join(tokens)
        refused: Dict[int, CredentialError] = {}
        state = self.keyring._state
        if packed is not None:
            rc, out, base = self._many(state, packed, ffi.NULL, n, now)
            if rc != lib.SC_E_BATCH_SPLIT:
                return self._batch(rc, out, base, n, state, refused)
        # Mixed types, a non-ASCII str or a token holding the separator:
        # convert one by one and pass the lengths (a token that is not even
        # ASCII goes to C empty and is answered with its own error).
        toks: List[bytes] = []
        for i, t in enumerate(tokens):
            try:
                toks.append(t if type(t) is bytes else as_token_bytes(t))
            except CredentialError as e:
                refused[i] = e
                toks.append(b"")
        rc, out, base = self._many(state, b"".join(toks), ffi.new("size_t[]", list(map(len, toks))),
                                   n, now)
        return self._batch(rc, out, base, n, state, refused)

    def _many(self, state: Any, packed: bytes, lens: Any, n: int,
              now: Optional[int]) -> Tuple[int, bytearray, int]:
        plen = len(packed)
        work, wcap = self._batch_work(lib.sc_batch_work_need(self._policy, plen))
        need = lib.sc_batch_out_need(n, plen)
        out, optr, base = _out_buffer(need)
        rc = lib.sc_verify_many(state.ks, self._policy, packed, plen, lens, n,
                                -1 if now is None else now, work, wcap, optr, need)
        return rc, out, base

    @staticmethod
    def _batch(rc: int, out: bytearray, base: int, n: int, state: Any,
               refused: Dict[int, CredentialError]) -> "VerifiedBatch":
        if rc:   # a bug (buffer sizing), never user input
            raise error_for_status(rc, "verify_many")
        return VerifiedBatch(out, base, n, state, refused)

    def verify_batch(self, tokens: Sequence[TokenLike], *,
                     now: Optional[int] = None) -> List[Union[Credential, CredentialError]]:
        """:meth:`verify_many`, answered as a list: in order, a Credential or
        the CredentialError for each token."""
        return self.verify_many(tokens, now=now).to_list()


_SEP = bytes([lib.SC_BATCH_SEP])
_SEP_STR = _SEP.decode()


def _join(tokens: Sequence[TokenLike]) -> Optional[bytes]:
    """All tokens in one buffer, separated by SC_BATCH_SEP, when they are all
    bytes or all ASCII str (the common case: one join, no per-token work in
    Python); None otherwise. A token holding the separator is caught by C,
    which then counts more tokens than were given (SC_E_BATCH_SPLIT)."""
    try:
        return _SEP.join(tokens)  # type: ignore[arg-type]
    except TypeError:
        pass
    try:
        return _SEP_STR.join(tokens).encode("ascii")  # type: ignore[arg-type]
    except (TypeError, UnicodeEncodeError):
        return None


# Output buffers of dropped VerifiedBatch objects, for the next verify_many: a
# fresh half-megabyte per call costs page faults (zero-filled by the kernel)
# that took longer than the verification itself once the heap had been used by
# other code. Every byte a VerifiedBatch reads is written by the call that
# filled it.
_pool: List[bytearray] = []
_POOL_MAX = 4


def _out_buffer(need: int) -> Tuple[bytearray, Any, int]:
    while _pool:
        try:
            buf = _pool.pop()
        except IndexError:        # another thread took the last one
            break
        if len(buf) >= need + 8:
            return _at_aligned(buf, 8)
    return _aligned(need, 8)


def _aligned(size: int, align: int) -> Tuple[bytearray, Any, int]:
    """A zeroed buffer of at least ``size`` bytes, a cffi pointer to an
    ``align``-aligned start in it and that start's offset."""
    return _at_aligned(bytearray(size + align), align)


def _at_aligned(buf: bytearray, align: int) -> Tuple[bytearray, Any, int]:
    ptr = ffi.from_buffer(buf)
    base = -int(ffi.cast("uintptr_t", ptr)) % align
    return buf, ptr + base, base


class VerifiedBatch:
    """The outcome of :meth:`Verifier.verify_many` for n tokens, in order.

    ``status``, ``uid`` and ``gid`` are columns written by the C core (each a
    read-only memoryview of C ints, copied out): status 0 means verified,
    any other value is the C status code of the first rule the token broke
    (-1: refused before C, a str token with non-ASCII characters); uid and
    gid are 0 for those.
    Indexing gives the :class:`Credential` or the
    :class:`~slurmauth_fast.errors.CredentialError` of one token, built from
    the record C kept for it; :meth:`to_list` builds them all."""

    __slots__ = ("_out", "_base", "_n", "_state", "_refused")

    def __init__(self, out: bytearray, base: int, n: int, state: Any,
                 refused: Dict[int, CredentialError]) -> None:
        self._out = out
        self._base = base
        self._n = n
        self._state = state
        self._refused = refused

    def __del__(self) -> None:
        # Nothing outside this object can still see the buffer: the columns
        # it hands out are copies, and Credentials copy what they read.
        # (At interpreter exit the module's globals may be gone: then nothing.)
        pool = _pool
        if pool is not None and len(self._out) <= _BATCH_KEEP and len(pool) < _POOL_MAX:
            pool.append(self._out)

    def _column(self, at: int, width: int, fmt: Literal["i", "I", "Q"]) -> "memoryview[int]":
        """A view of a column in the buffer: for this object's own use only."""
        start = self._base + at * self._n
        return memoryview(self._out)[start:start + width * self._n].cast(fmt)

    def _copy(self, at: int, width: int, fmt: Literal["i", "I"]) -> "memoryview[int]":
        """A column as the caller gets it: a read-only copy (4 bytes a token),
        so the buffer can be reused once this object is gone."""
        start = self._base + at * self._n
        return memoryview(bytes(self._out[start:start + width * self._n])).cast(fmt)

    @property
    def status(self) -> "memoryview[int]":
        """Per token: 0 verified, else the C status (-1: refused before C)."""
        if not self._refused:
            return self._copy(8, 4, "i")
        col = self._column(8, 4, "i").tolist()
        for i in self._refused:
            col[i] = -1
        return memoryview(array.array("i", col).tobytes()).cast("i")

    @property
    def uid(self) -> "memoryview[int]":
        """Per token: the credential's uid (0 where status is not 0)."""
        return self._copy(12, 4, "I")

    @property
    def gid(self) -> "memoryview[int]":
        """Per token: the credential's gid (0 where status is not 0)."""
        return self._copy(16, 4, "I")

    @property
    def verified(self) -> int:
        """How many tokens verified."""
        return sum(1 for st in self._column(8, 4, "i") if not st)

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"<VerifiedBatch of {self._n} tokens, {self.verified} verified>"

    def __getitem__(self, i: int) -> Union[Credential, CredentialError]:
        if type(i) is not int:
            raise TypeError("VerifiedBatch indices must be integers")
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError("VerifiedBatch index out of range")
        return self._answer(i, self._column(8, 4, "i")[i], self._column(0, 8, "Q")[i])

    def _answer(self, i: int, st: int, off: int) -> Union[Credential, CredentialError]:
        """Token i's Credential or error, from its status and record offset."""
        if st and i in self._refused:
            return self._refused[i]
        try:
            if st:
                return _failure(st, self._out, self._base + off)
            return _credential(self._out, self._base + off, self._state)
        except CredentialError as e:   # a malformed "id"/"sbcast"/"net" object
            return e

    def credential(self, i: int) -> Credential:
        """Token i's Credential; raises its CredentialError when it did not verify."""
        got = self[i]
        if isinstance(got, CredentialError):
            raise got
        return got

    def to_list(self) -> List[Union[Credential, CredentialError]]:
        """Every token's Credential or CredentialError, in order."""
        answer = self._answer
        return [answer(i, st, off) for i, (st, off) in
                enumerate(zip(self._column(8, 4, "i"), self._column(0, 8, "Q")))]

    def __iter__(self) -> Iterator[Union[Credential, CredentialError]]:
        return iter(self.to_list())


def _failure(rc: int, buf: bytearray, base: int) -> CredentialError:
    err = error_for_status(rc)
    claim = _HEAD.unpack_from(buf, base)[0] if rc >= 20 else -1
    if claim >= 0:
        err = type(err)(f"claim {_CLAIM_NAMES[claim]!r}: {err}", status=rc)
        if claim == lib.SC_CL_ID and isinstance(err, ClaimsError) and not isinstance(err, IdentityError):
            err = IdentityError(f"claim 'id': {error_for_status(rc)}", status=rc)
    if not isinstance(err, CredentialError):  # a bug (buffer sizing), never user input
        raise err
    return err


_new = object.__new__
_set = object.__setattr__
_CTX = CONTEXTS


class _Layout:
    """How to read a result whose host, cluster and payload have given
    lengths: a struct that takes iat and exp, the fields a sender repeats
    from token to token (ver, ruid, uid, gid, context, key index, objects,
    shape: as C wrote them), host + cluster, and the payload. Tokens from one
    cluster share those lengths, so the last layout used is tried first.

    ``cache`` maps the repeated fields and names (as bytes) of credentials
    read with it that had no "id"/"sbcast"/"net" object to the keyring state
    they were verified with and their ``__dict__``; ``last`` is the entry hit
    last, as (state, repeated, names, dict), compared first (two bytes
    compares cost less than hashing them for the lookup). A token whose bytes
    are there (with the same state: a reload may renumber kids) gets a copy of
    that dict with its own iat, exp and payload: no other field needs
    decoding. Only verified credentials get in, so only a key holder can fill
    it; once it holds _CACHE_MAX senders, others are read in full (a miss
    costs one dict lookup), and an entry verified with keys since reloaded
    is dropped when met."""

    __slots__ = ("shape", "unpack", "read", "cluster", "payload", "cache", "last")

    def __init__(self, hl: int, cl: int, pl: int) -> None:
        self.cluster = cl >= 0
        self.payload = pl >= 0
        lims = hl < _SHAPE_LIMIT and cl < _SHAPE_LIMIT and pl < _SHAPE_LIMIT
        self.shape = hl + ((cl + 1) << 21) + ((pl + 1) << 42) if lims else -2
        self.unpack = struct.Struct(
            f"=8x2q{_REPEATED}s{_OUT - _LENS_AT}x{hl + max(cl, 0)}s{max(pl, 0)}s").unpack_from
        #: every field: iat .. shape, host, cluster, payload
        self.read = struct.Struct(
            f"=8x10q{_OUT - _LENS_AT}x{hl}s{max(cl, 0)}s{max(pl, 0)}s").unpack_from
        self.cache: Dict[Tuple[bytes, bytes], Tuple[Any, Dict[str, Any]]] = {}
        self.last: Tuple[Any, Optional[bytes], Optional[bytes], Dict[str, Any]] = (
            None, None, None, {})


_REPEATED = 64                            # ver .. shape, from offset 24 (after err_claim, iat, exp)
_CACHE_MAX = 4096                         # senders remembered per layout
assert ffi.offsetof("sc_result", "ver") + _REPEATED == ffi.offsetof("sc_result", "host_len") == _LENS_AT
_layouts: Dict[Tuple[int, int, int], _Layout] = {}
_last = [_Layout(0, -1, -1)]


def _layout(lens: Tuple[int, int, int]) -> _Layout:
    lay = _layouts.get(lens)
    if lay is None:
        if len(_layouts) > 4096:
            _layouts.clear()
        lay = _layouts[lens] = _Layout(*lens)
    _last[0] = lay
    return lay


def _credential(buf: bytearray, base: int, state: Any) -> Credential:
    """Build the Credential from the C result at ``buf[base:]``."""
    lay = _last[0]
    try:
        iat, exp, repeated, names, payload = lay.unpack(buf, base)
    except struct.error:          # this layout runs past the buffer: not the token's
        return _credential_read(buf, base, state)
    st, rep0, names0, d = lay.last
    if repeated != rep0 or names != names0 or st is not state:
        key = (repeated, names)
        hit = lay.cache.get(key)
        if hit is None or hit[0] is not state:
            if hit is not None:           # verified with keys since reloaded
                lay.cache.pop(key, None)
            return _credential_read(buf, base, state)
        d = hit[1]
        lay.last = (state, repeated, names, d)    # one tuple, stored at once
    d = d.copy()
    d["iat"] = iat
    d["exp"] = exp
    if lay.payload:
        d["payload"] = payload
    cred = _new(Credential)
    _set(cred, "__dict__", d)
    return cred


def _credential_read(buf: bytearray, base: int, state: Any) -> Credential:
    """_credential for a result not in the layout's cache: every field read
    and decoded (and the "id"/"sbcast"/"net" objects parsed)."""
    lay = _last[0]
    try:
        (iat, exp, ver, ruid, uid, gid, ctx, kidx, objects, shape,
         host, cluster, payload) = lay.read(buf, base)
    except struct.error:          # this layout runs past the buffer: not the token's
        shape = None
    if shape != lay.shape:        # other lengths (or objects, shape -1): look the layout up
        lay = _layout(_LENS.unpack_from(buf, base + _LENS_AT))
        (iat, exp, ver, ruid, uid, gid, ctx, kidx, objects, shape,
         host, cluster, payload) = lay.read(buf, base)
    identity = sbcast = net = None
    if objects:
        io, il, so, sl, no, nl = _OBJECTS.unpack_from(buf, base + _OBJECTS_AT)
        if objects & 1:
            identity = parse_identity(loads_object(bytes(buf[base + io:base + io + il]),
                                                   IdentityError, "claim 'id'"))
        if objects & 2:
            sbcast = loads_object(bytes(buf[base + so:base + so + sl]), ClaimsError, "claim 'sbcast'")
        if objects & 4:
            net = loads_object(bytes(buf[base + no:base + no + nl]), ClaimsError, "claim 'net'")
    cred = _new(Credential)
    # The C scanner has validated the UTF-8 of host and cluster. Fields left
    # out of the instance dict (identity, sbcast, net when absent) read as the
    # dataclass defaults (None): equality, repr and asdict see the same values.
    d = {"uid": uid, "gid": gid, "host": host.decode(),
         "cluster": cluster.decode() if lay.cluster else None, "context": _CTX[ctx],
         "iat": iat, "exp": exp, "ver": ver, "ruid": ruid,
         "payload": payload if lay.payload else None, "kid": state.kids[kidx]}
    if objects:
        d["identity"] = identity
        d["sbcast"] = sbcast
        d["net"] = net
    elif shape == lay.shape and len(lay.cache) < _CACHE_MAX:
        # the next token from this sender will read like this one
        _, _, repeated, names, _ = lay.unpack(buf, base)
        d0 = dict(d, iat=0, exp=0, payload=None)
        lay.cache[repeated, names] = (state, d0)
        lay.last = (state, repeated, names, d0)
    _set(cred, "__dict__", d)
    return cred


def verify_credential(keyring: Keyring, token: TokenLike, *, verifier_uid: Optional[int] = None,
                      contexts: Union[str, Sequence[str]] = RPC_CONTEXTS,
                      now: Optional[int] = None) -> Credential:
    """One-shot verification (builds a :class:`Verifier`; keep one for speed)."""
    return Verifier(keyring, verifier_uid=verifier_uid, contexts=contexts).verify(token, now=now)
