"""``decode``: PyJWT's ``jwt.decode`` for HS256 tokens, over the C core.

The signature check, the split, strict base64url and the claims JSON go
through the same single C call as :meth:`HS256Key.verify`; the registered
claims are then checked as PyJWT 2.x checks them, in its order: ``require``,
``iat``, ``nbf``, ``exp`` (with ``leeway``), ``iss``, ``aud`` (and
``strict_aud``), ``sub``, ``jti``. Failures raise the classes PyJWT raises,
under the same names, from :mod:`slurmauth_fast.exceptions` (all
:class:`~slurmauth_fast.exceptions.SlurmAuthError` subclasses).

Where it differs from PyJWT, it is stricter: HS256 only; the JSON rules of
:func:`~slurmauth_fast.jsonutil.loads_object` (no duplicate keys, NaN,
integers beyond int64, NUL or lone surrogate escapes, deep nesting); strict
unpadded base64url; a size limit; a key holding a PEM begin marker anywhere
(PyJWT refuses whole PEM blocks) is refused as a public key; and a header
other than the usual ones is parsed only after the signature verified, so a
forged token with an odd header fails as :class:`InvalidSignatureError`
where PyJWT may first report the header. With ``verify_signature`` off the tag's shape is still checked
and the alg must still be HS256 ("none" is never accepted).

A str or bytes key goes to C as it is, for that call only: C refuses it as
PyJWT does (empty, a public key), keys the HMAC with it on its stack and
wipes that; nothing of the key is kept between calls.
"""
from __future__ import annotations

import math
import time
import types
from collections.abc import Iterable
from datetime import timedelta
from typing import Any, Container, Dict, Mapping, Optional, Sequence, Tuple, Union

from ._bindings import hs256 as _hs256
from .exceptions import (
    ClaimsError, DecodeError, ExpiredSignatureError, HeaderError, ImmatureSignatureError,
    InvalidAlgorithmError, InvalidAudienceError, InvalidIssuedAtError, InvalidIssuerError,
    InvalidJTIError, InvalidKeyError, InvalidSubjectError, InvalidTokenError,
    MissingRequiredClaimError,
)
from .jsonutil import ParsedObjects, loads_object, loads_prescanned
from .jws import DEFAULT_MAX_TOKEN, HS256Key, TokenLike, as_token_bytes, check_alg

KeyLike = Union[str, bytes, bytearray, HS256Key]

#: The clock of the time claims (PyJWT reads datetime.now(timezone.utc), the same instant).
_now = time.time

_DEFAULTS: Dict[str, Any] = {
    "verify_signature": True, "verify_exp": True, "verify_nbf": True, "verify_iat": True,
    "verify_aud": True, "verify_iss": True, "verify_sub": True, "verify_jti": True,
    "require": (), "strict_aud": False,
}
#: A claim's absence, where None is a value the token may hold.
_ABSENT = object()
#: PyJWT 2.x's default options (read-only).
DEFAULT_OPTIONS: Mapping[str, Any] = types.MappingProxyType(_DEFAULTS)
_VERIFY_NAMES = ("verify_exp", "verify_nbf", "verify_iat", "verify_aud", "verify_iss",
                 "verify_sub", "verify_jti")

TimeWindow = Tuple[Union[int, float], Union[int, float]]


def _time_window(claims: Dict[str, Any]) -> Optional[TimeWindow]:
    """The instants a token's time claims allow, when it has any and each
    one it has is an int: (the later of iat and nbf, exp), an absent claim
    unbounded. PyJWT's checks pass exactly when start <= now + leeway and
    exp > now - leeway; else None (the claims are checked one by one)."""
    start: Union[int, float] = -math.inf
    end: Union[int, float] = math.inf
    for name in ("iat", "nbf", "exp"):
        value = claims.get(name, _ABSENT)
        if value is _ABSENT:
            continue
        if type(value) is not int:
            return None
        if name == "exp":
            end = value
        else:
            start = max(start, value)
    if start == -math.inf and end == math.inf:
        return None
    return start, end


class _ClaimsNote:
    """What decode() keeps beside a kept claims object: its _time_window,
    and the last (issuer, audience, subject) -- each a str or None -- with
    which its iss, aud, sub and jti passed the default checks. Those checks
    depend on nothing else (the kept object never changes), so the very
    same argument objects pass them again."""

    __slots__ = ("window", "passed")

    def __init__(self, claims: Dict[str, Any]) -> None:
        self.window = _time_window(claims)
        self.passed: Optional[Tuple[Optional[str], Optional[str], Optional[str]]] = None


_STR_OR_NONE = (str, type(None))

#: Claims objects of tokens decode() verified lately, by their bytes (each
#: with its _ClaimsNote): a token seen again is still checked in C (tag,
#: base64url, claims pre-scan) and its claims checked again, but its claims
#: JSON is not parsed again.
CLAIMS_CACHE_SIZE = 1024
_parsed = ParsedObjects(CLAIMS_CACHE_SIZE, max_bytes=2048, note=_ClaimsNote)


def _key_argument(key: KeyLike) -> Any:
    """What the C call takes for a decode() key: an :class:`HS256Key`'s keyed
    context, or the key's bytes (str as UTF-8), which C checks and keys for
    that one call (no key, context or digest is kept between calls)."""
    if type(key) is bytes:
        return key
    if type(key) is str:
        return key.encode()
    if isinstance(key, HS256Key):
        return key._ctx
    if isinstance(key, str):
        return key.encode("utf-8")
    if isinstance(key, (bytes, bytearray, memoryview)):
        return bytes(key)
    raise InvalidKeyError(f"key must be str, bytes or HS256Key, not {type(key).__name__}")


def _check_header(raw: bytes) -> None:
    """A header that is not one of the known segments: strict JSON, alg exactly
    HS256, then PyJWT's rules on kid, crit and b64."""
    header = loads_object(raw, HeaderError, "JOSE header")
    check_alg(header, "HS256")
    if "kid" in header and not isinstance(header["kid"], str):
        raise InvalidTokenError("Key ID header parameter must be a string")
    if "crit" in header:
        crit = header["crit"]
        if not isinstance(crit, list) or not crit:
            raise InvalidTokenError("Invalid 'crit' header: must be a non-empty list")
        for ext in crit:
            if not isinstance(ext, str):
                raise InvalidTokenError("Invalid 'crit' header: values must be strings")
            if ext != "b64":
                raise InvalidTokenError(f"Unsupported critical extension: {ext[:32]}")
            if ext not in header:
                raise InvalidTokenError(f"Critical extension '{ext}' is missing from headers")
    if header.get("b64", True) is False:
        raise DecodeError("unencoded (b64: false) payloads are not supported")


def _merge_options(options: Optional[Mapping[str, Any]]) -> Mapping[str, Any]:
    """PyJWT's option merge: with verify_signature off, every other check
    defaults to off too."""
    if options is None:
        return _DEFAULTS
    merged = dict(options)
    if not merged.get("verify_signature", True):
        for name in _VERIFY_NAMES:
            merged.setdefault(name, False)
    return {**_DEFAULTS, **merged}


def decode(jwt: TokenLike, key: KeyLike = "", algorithms: Optional[Sequence[str]] = ("HS256",),
           options: Optional[Mapping[str, Any]] = None, *,
           audience: Union[str, Iterable[str], None] = None,
           issuer: Union[str, Container[str], None] = None,
           subject: Optional[str] = None, leeway: Union[float, timedelta] = 0,
           max_len: int = DEFAULT_MAX_TOKEN) -> Dict[str, Any]:
    """Verify an HS256 JWT and return its claims, as PyJWT's ``jwt.decode``
    does (same options, same checks, same exception names; see the module
    docstring for where it is stricter). ``key`` is the HMAC secret (str as
    UTF-8, or bytes) or an :class:`HS256Key`; ``max_len`` bounds the token's
    size before any work."""
    opts: Mapping[str, Any]
    if options is None:
        opts, verify_signature = _DEFAULTS, True
    else:
        opts, verify_signature = _merge_options(options), options.get("verify_signature", True)
    if type(jwt) is str and jwt.isascii():
        tok = jwt.encode()                          # ASCII: the UTF-8 encoder's copy
    else:
        tok = as_token_bytes(jwt)
    if verify_signature:
        if not algorithms:
            raise DecodeError('It is required that you pass in a value for the "algorithms" '
                              'argument when calling decode().')
        if "HS256" not in algorithms:
            raise InvalidAlgorithmError("The specified alg value is not allowed "
                                        "(only HS256 is supported)")
        key_arg = key if type(key) is bytes else _key_argument(key)
    else:
        key_arg = None
    raw_claims, _kind, raw_hdr, plain, objects, members = _hs256.decode(
        key_arg, tok, max_len, verify_signature)
    if raw_hdr is not None:
        _check_header(raw_hdr)
    hit = _parsed.get_noted(raw_claims)
    if hit is None:
        payload, note = loads_prescanned(raw_claims, plain, objects, members, ClaimsError, "claims"), None
        if verify_signature:
            payload = _parsed.put(raw_claims, payload)
    else:
        payload, note = hit
    _validate(payload, opts, audience, issuer, subject, leeway, note)
    return payload


def validate_claims(payload: Dict[str, Any], options: Mapping[str, Any], *,
                    audience: Union[str, Iterable[str], None] = None,
                    issuer: Union[str, Container[str], None] = None,
                    subject: Optional[str] = None, leeway: Union[float, timedelta] = 0) -> None:
    """PyJWT 2.x's ``_validate_claims`` on an already verified payload: the same
    checks in the same order (``options`` holds every key of DEFAULT_OPTIONS).
    An int time claim within bounds is passed in line (PyJWT's int() of an int
    is the int itself); any other value goes through PyJWT's conversion."""
    _validate(payload, options, audience, issuer, subject, leeway, None)


def _validate(payload: Dict[str, Any], options: Mapping[str, Any],
              audience: Union[str, Iterable[str], None], issuer: Union[str, Container[str], None],
              subject: Optional[str], leeway: Union[float, timedelta],
              note: Optional[_ClaimsNote]) -> None:
    """validate_claims with its arguments by position (decode's call), and
    the kept payload's note when there is one: inside its time window the
    time claims are not looked at one by one, and with the default options
    and the arguments it last passed with, iss/aud/sub/jti are not either."""
    if type(leeway) is not int and isinstance(leeway, timedelta):
        leeway = leeway.total_seconds()
    if audience is not None and type(audience) is not str and not isinstance(audience, Iterable):
        raise TypeError("audience must be a string, iterable or None")
    get = payload.get
    if options is _DEFAULTS:
        v_iat = v_nbf = v_exp = v_iss = v_aud = v_sub = v_jti = True
    else:
        v_iat, v_nbf, v_exp = options["verify_iat"], options["verify_nbf"], options["verify_exp"]
        v_iss, v_aud = options["verify_iss"], options["verify_aud"]
        v_sub, v_jti = options["verify_sub"], options["verify_jti"]
        for claim in options["require"]:
            if get(claim) is None:
                raise MissingRequiredClaimError(f'Token is missing the "{claim}" claim', claim=claim)
    now = _now()
    window = None if note is None else note.window
    if (window is None or not (v_iat and v_nbf and v_exp)
            or not (window[0] <= now + leeway and window[1] > now - leeway)):
        _check_times(payload, now, leeway, v_iat, v_nbf, v_exp)
    if note is not None and options is _DEFAULTS:
        passed = note.passed
        if passed is not None and passed[0] is issuer and passed[1] is audience and passed[2] is subject:
            return
    # iss, aud, sub: a str claim equal to a str expectation passes in line (in
    # PyJWT too, strict_aud or not); anything else takes PyJWT's full path.
    if v_iss and issuer is not None:
        value = get("iss")
        if type(value) is not str or type(issuer) is not str or value != issuer:
            _validate_iss(payload, issuer)
    if v_aud:
        value = get("aud")
        if audience is None:
            if value:
                raise InvalidAudienceError("Invalid audience", claim="aud")
        elif type(value) is not str or type(audience) is not str or value != audience:
            _validate_aud(payload, audience, strict=options.get("strict_aud", False))
    if v_sub:
        value = get("sub", _ABSENT)
        if value is not _ABSENT and (type(value) is not str or (subject is not None and value != subject)):
            _validate_sub(payload, subject)
    if v_jti:
        value = get("jti", _ABSENT)
        if value is not _ABSENT and type(value) is not str and not isinstance(value, str):
            raise InvalidJTIError("JWT ID must be a string", claim="jti")
    if (note is not None and options is _DEFAULTS and type(issuer) in _STR_OR_NONE
            and type(audience) in _STR_OR_NONE and type(subject) in _STR_OR_NONE):
        note.passed = (issuer, audience, subject)     # type: ignore[assignment]


def _check_times(payload: Dict[str, Any], now: float, leeway: float,
                 v_iat: bool, v_nbf: bool, v_exp: bool) -> None:
    """iat, nbf and exp, each checked when asked for, in PyJWT's order."""
    get = payload.get
    if v_iat:
        value = get("iat", _ABSENT)
        if value is not _ABSENT and (type(value) is not int or value > now + leeway):
            _validate_iat(payload, now, leeway)
    if v_nbf:
        value = get("nbf", _ABSENT)
        if value is not _ABSENT and (type(value) is not int or value > now + leeway):
            _validate_nbf(payload, now, leeway)
    if v_exp:
        value = get("exp", _ABSENT)
        if value is not _ABSENT and (type(value) is not int or value <= now - leeway):
            _validate_exp(payload, now, leeway)


def _validate_iat(payload: Dict[str, Any], now: float, leeway: float) -> None:
    try:
        iat = int(payload["iat"])
    except (ValueError, TypeError, OverflowError):
        raise InvalidIssuedAtError("Issued At claim (iat) must be an integer.", claim="iat") from None
    if iat > now + leeway:
        raise ImmatureSignatureError("The token is not yet valid (iat)", claim="iat")


def _validate_nbf(payload: Dict[str, Any], now: float, leeway: float) -> None:
    try:
        nbf = int(payload["nbf"])
    except (ValueError, TypeError, OverflowError):
        raise ClaimsError("Not Before claim (nbf) must be an integer.", claim="nbf") from None
    if nbf > now + leeway:
        raise ImmatureSignatureError("The token is not yet valid (nbf)", claim="nbf")


def _validate_exp(payload: Dict[str, Any], now: float, leeway: float) -> None:
    try:
        exp = int(payload["exp"])
    except (ValueError, TypeError, OverflowError):
        raise ClaimsError("Expiration Time claim (exp) must be an integer.", claim="exp") from None
    if exp <= now - leeway:
        raise ExpiredSignatureError("Signature has expired", claim="exp")


def _validate_iss(payload: Dict[str, Any], issuer: Union[str, Container[str], None]) -> None:
    if issuer is None:
        return
    if "iss" not in payload:
        raise MissingRequiredClaimError('Token is missing the "iss" claim', claim="iss")
    iss = payload["iss"]
    if not isinstance(iss, str):
        raise InvalidIssuerError("Payload Issuer (iss) must be a string", claim="iss")
    if isinstance(issuer, str):
        if iss != issuer:
            raise InvalidIssuerError("Invalid issuer", claim="iss")
        return
    try:
        if iss not in issuer:
            raise InvalidIssuerError("Invalid issuer", claim="iss")
    except TypeError:
        raise InvalidIssuerError('Issuer param must be "str" or "Container[str]"',
                                 claim="iss") from None


def _validate_aud(payload: Dict[str, Any], audience: Union[str, Iterable[str], None], *,
                  strict: bool) -> None:
    if audience is None:
        if "aud" not in payload or not payload["aud"]:
            return
        raise InvalidAudienceError("Invalid audience", claim="aud")
    if "aud" not in payload or not payload["aud"]:
        raise MissingRequiredClaimError('Token is missing the "aud" claim', claim="aud")
    claimed = payload["aud"]
    if strict:
        if not isinstance(audience, str):
            raise InvalidAudienceError("Invalid audience (strict)", claim="aud")
        if not isinstance(claimed, str):
            raise InvalidAudienceError("Invalid claim format in token (strict)", claim="aud")
        if audience != claimed:
            raise InvalidAudienceError("Audience doesn't match (strict)", claim="aud")
        return
    if isinstance(claimed, str):
        claimed = [claimed]
    if not isinstance(claimed, list) or any(not isinstance(c, str) for c in claimed):
        raise InvalidAudienceError("Invalid claim format in token", claim="aud")
    wanted = [audience] if isinstance(audience, str) else audience
    if all(aud not in claimed for aud in wanted):
        raise InvalidAudienceError("Audience doesn't match", claim="aud")


def _validate_sub(payload: Dict[str, Any], subject: Optional[str]) -> None:
    if "sub" not in payload:
        return
    if not isinstance(payload["sub"], str):
        raise InvalidSubjectError("Subject must be a string", claim="sub")
    if subject is not None and payload["sub"] != subject:
        raise InvalidSubjectError("Invalid subject", claim="sub")


__all__ = ["CLAIMS_CACHE_SIZE", "DEFAULT_OPTIONS", "decode", "validate_claims"]
