"""auth/jwt (Slurm plugin 102): ``scontrol token`` minting and slurmctld's verification.

What Slurm does, and so what this module does:

* **Minting** (``scontrol token [username=U] [lifespan=N]``, served by slurmctld):
  an HS256 JWT with exactly the claims ``{"exp","iat","sun"}`` ("sun" = Slurm
  user name), written by libjwt as compact JSON with sorted keys under the
  header ``{"alg":"HS256","typ":"JWT"}``. The lifespan defaults to 1800 s; a
  lifespan <= 0 or >= 4294967294 (``NO_VAL``) is refused. Only root or
  SlurmUser may mint a token for another user, and with AuthAltParameters
  ``disable_token_creation`` only they may mint at all. The key is the raw
  bytes of ``StateSaveLocation/jwt_hs256.key`` or of ``jwt_key=PATH``, which
  must grant "other" no access.
* **Verification** (slurmctld/slurmdbd): alg HS256 with that key, or RS256
  with a public key picked by ``kid`` from the JWKS file named by ``jwks=PATH``
  (which may be world-readable but never world-writable; see
  :class:`RS256KeySet` for which keys count). ``exp`` is required
  and a token with ``exp < now`` is rejected; ``iat`` is required. The user is
  the string claim "sun", else "username", else the claim named by
  ``userclaimfield=``. The client also packs a username on the wire; when it
  differs from the token's user, the token's user must be root or SlurmUser
  (that is how slurmrestd acts for others), else the request is rejected.
  With ``use_jwt_client_ids`` the uid, gid and "id" object come from the
  claims (as auth/slurm's use_client_ids does) instead of the local user
  database; ``use_jwt_client_ids_only`` never consults the local database.

Deliberate strictness beyond libjwt 1.x (which compares alg case-insensitively
and accepts any JSON): alg must be exactly ``HS256`` or ``RS256`` (RFC 7515
alg values are case-sensitive); JSON with duplicate keys is refused; a
header ``typ``, when present, must be ``JWT`` (case-insensitive, as libjwt).
Verification is one C call per token (``csrc/jwtverify.c``: split, strict
header and claims scan, the HS256 MAC with the pre-keyed
:class:`~slurmauth_fast.jws.HS256Key`); an RS256 signature is checked with
``cryptography`` over what that call split and decoded. User names resolve
through a :class:`~slurmauth_fast.users.UserCache` (answers kept for a TTL).
Duplicate keys nested inside claims nobody reads are not looked for (jansson,
so Slurm, keeps the last one; no decision depends on them); the header and
the claims object may hold at most 256 members each.

Inside the package import this module as ``from . import jwt as slurm_jwt``:
``import jwt`` elsewhere means PyJWT.
"""
from __future__ import annotations

import logging
import math
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple, Union, cast

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from ._bindings import authjwt as _aj
from ._bindings import hs256 as _hs256
from ._bindings._ffi import lib as _lib
from ._bindings.status import STATUS
from .errors import (
    AlternateUserError,
    BadArgumentError,
    BadArgumentTypeError,
    Base64Error,
    ClaimsError,
    JWKSError,
    KeyFileError,
    KeyIdError,
    LifespanError,
    SignatureError,
    SignatureLengthError,
    TokenCreationDeniedError,
    TokenCreationError,
    UnknownUserError,
    error_for_status,
)
from .identity import Identity, identity_from_user, parse_identity
from .jsonutil import dumps_compact, loads_object
from .jws import DEFAULT_MAX_TOKEN, HS256Key, TokenLike, as_token_bytes
from .exceptions import CredentialError, SlurmAuthError
from .keyfile import NO_OTHER_ACCESS, NO_OTHER_WRITE, PathLike, read_key_file, wipe
from ._bounded import BoundedCache
from .users import UserCache, lookup_user

log = logging.getLogger("slurmauth_fast.jwt")

#: Slurm's plugin id for auth/jwt (packed before the token on the wire).
PLUGIN_ID = 102
#: ``scontrol token`` lifespan when none is given (seconds).
DEFAULT_LIFESPAN = 1800
#: Slurm's NO_VAL: lifespans at or above it are refused.
NO_VAL = 4294967294
#: Largest uid/gid value accepted from claims (uint32).
MAX_ID = 4294967295
#: Default key file name inside StateSaveLocation.
DEFAULT_KEY_NAME = "jwt_hs256.key"
#: Smallest RSA modulus accepted from a JWKS (bits); smaller keys are forgeable.
MIN_RSA_BITS = 2048
#: Credentials a verifier keeps for tokens seen again (see JWTVerifier._finish).
CREDENTIALS_MAX = 4096
#: Tokens longer than this (bytes) get no kept credential: the cache holds at
#: most CREDENTIALS_MAX * CREDENTIAL_TOKEN_MAX bytes of tokens.
CREDENTIAL_TOKEN_MAX = 1024
#: The environment variable clients take their token from.
ENV_TOKEN = "SLURM_JWT"

_HEADER_HS256 = b'{"alg":"HS256","typ":"JWT"}'
_INT64 = (-(2**63), 2**63 - 1)


# --- AuthAltParameters ------------------------------------------------------

_VALUE_OPTIONS = ("jwt_key", "jwks", "userclaimfield")
_FLAG_OPTIONS = ("disable_token_creation", "use_jwt_client_ids", "use_jwt_client_ids_only")


@dataclass(frozen=True)
class AuthAltParameters:
    """The auth/jwt options of ``AuthAltParameters`` (slurm.conf / slurmdbd.conf).

    ``jwt_key``: HS256 key file (default ``StateSaveLocation/jwt_hs256.key``);
    ``jwks``: RS256 public keys; ``userclaimfield``: extra claim naming the user;
    ``disable_token_creation``: only root/SlurmUser may run ``scontrol token``;
    ``use_jwt_client_ids``: take uid/gid/id from the claims when present;
    ``use_jwt_client_ids_only``: only from the claims (implies the former).
    ``unknown`` keeps options this module does not know (other plugins' or newer
    Slurm's); they are ignored with a warning, as Slurm ignores them.
    """

    jwt_key: Optional[str] = None
    jwks: Optional[str] = None
    userclaimfield: Optional[str] = None
    disable_token_creation: bool = False
    use_jwt_client_ids: bool = False
    use_jwt_client_ids_only: bool = False
    unknown: Tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: Optional[str]) -> "AuthAltParameters":
        """Parse ``"jwt_key=/p,jwks=/p,userclaimfield=x,disable_token_creation"``.

        Options are comma-separated; names are case-insensitive (Slurm matches
        them with ``strcasestr``); the value runs to the next comma. The first
        occurrence of an option wins, as in Slurm. An option that needs a value
        but has none, or a flag given a value, is a :class:`BadArgumentError`.
        """
        if text is None:
            return cls()
        if not isinstance(text, str):
            raise BadArgumentTypeError(f"AuthAltParameters must be a str, not {type(text).__name__}")
        values: Dict[str, Any] = {}
        unknown: List[str] = []
        for raw in text.split(","):
            item = raw.strip()
            if not item:
                continue
            name, eq, text_value = item.partition("=")
            name = name.strip().lower()
            value: Union[str, bool] = text_value.strip()
            if name in _VALUE_OPTIONS:
                if not eq or not value:
                    raise BadArgumentError(f"AuthAltParameters option {name}= needs a value")
                if "\0" in text_value:
                    raise BadArgumentError(f"AuthAltParameters option {name}= contains a NUL byte")
            elif name in _FLAG_OPTIONS:
                if eq:
                    raise BadArgumentError(f"AuthAltParameters flag {name} takes no value")
                value = True
            else:
                unknown.append(item)
                continue
            if name in values:
                log.warning("AuthAltParameters: %s given more than once; the first one is used", name)
                continue
            values[name] = value
        if unknown:
            log.warning("AuthAltParameters: ignoring options auth/jwt does not know: %s", ", ".join(unknown))
        if values.get("use_jwt_client_ids_only"):
            values["use_jwt_client_ids"] = True
        return cls(unknown=tuple(unknown), **values)

    def hs256_key_path(self, state_save_location: Optional[PathLike] = None) -> Optional[str]:
        """Where slurmctld/slurmdbd load the HS256 key from, by Slurm's rule:
        ``jwt_key=`` if given; else none when a jwks is configured (RS256 only);
        else ``StateSaveLocation/jwt_hs256.key``. Without any of them (slurmdbd
        has no StateSaveLocation) Slurm refuses to start: :class:`KeyFileError`."""
        if self.jwt_key:
            return self.jwt_key
        if self.jwks:
            return None
        if state_save_location:
            return os.path.join(os.fspath(state_save_location), DEFAULT_KEY_NAME)
        raise KeyFileError("no jwt_key set: give AuthAltParameters jwt_key=/path/to/key "
                           "or a StateSaveLocation holding jwt_hs256.key")


# --- keys -------------------------------------------------------------------

def load_hs256_key(path: PathLike, *, slurm_user_uid: Optional[int] = None) -> HS256Key:
    """Load an auth/jwt HS256 key file: the raw bytes are the HMAC key. The file
    must grant "other" no access (Slurm's fatal check); the bytes are wiped once
    the keyed HMAC states are computed."""
    buf = read_key_file(path, bad_mode=NO_OTHER_ACCESS, slurm_user_uid=slurm_user_uid)
    try:
        if not buf:
            raise KeyFileError(f"key file '{os.fspath(path)}' is empty")
        return HS256Key(buf)
    finally:
        wipe(buf)


def _b64(data: Union[str, bytes], exc: type, what: str, *, url: bool = True) -> bytes:
    """Strict base64 through the C core: base64url without padding (JOSE), or
    padded standard base64 (``url=False``, for x5c). Canonical encodings only."""
    raw = data.encode("ascii", "replace") if isinstance(data, str) else data
    status, out = _hs256.b64_decode(raw, url=url)
    if status:
        err = error_for_status(status)
        raise err if exc is Base64Error else exc(f"{what}: {err}")
    return out


def _rsa_public_key(d: Mapping[str, Any], where: str) -> rsa.RSAPublicKey:
    """The RSA public key of a JWK: from ``n``/``e`` (base64url big-endian
    integers) and/or the first ``x5c`` certificate (standard base64 DER), which
    newer Slurm prefers (Azure-style JWKS). When both are given they must agree."""
    from_ne: Optional[rsa.RSAPublicKey] = None
    if "n" in d or "e" in d:
        for f in ("n", "e"):
            if not isinstance(d.get(f), str) or not d[f]:
                raise JWKSError(f"{where}: missing or non-string {f}")
        n = int.from_bytes(_b64(d["n"], JWKSError, f"{where} n"), "big")
        e = int.from_bytes(_b64(d["e"], JWKSError, f"{where} e"), "big")
        try:
            from_ne = rsa.RSAPublicNumbers(e, n).public_key()
        except ValueError as err:
            raise JWKSError(f"{where}: invalid RSA public key ({err})") from None
    if "x5c" not in d:
        if from_ne is None:
            raise JWKSError(f"{where}: missing n and e (or x5c)")
        return from_ne
    chain = d["x5c"]
    if not isinstance(chain, list) or not chain or not isinstance(chain[0], str):
        raise JWKSError(f"{where}: x5c must be a non-empty array of base64 certificates")
    der = _b64(chain[0], JWKSError, f"{where} x5c[0]", url=False)
    try:
        cert_key = x509.load_der_x509_certificate(der).public_key()
    except ValueError as err:
        raise JWKSError(f"{where}: x5c[0] is not a DER X.509 certificate ({err})") from None
    if not isinstance(cert_key, rsa.RSAPublicKey):
        raise JWKSError(f"{where}: x5c[0] does not hold an RSA key")
    if from_ne is not None and from_ne.public_numbers() != cert_key.public_numbers():
        raise JWKSError(f"{where}: n/e and the x5c certificate hold different keys")
    return cert_key


@dataclass(frozen=True)
class RS256PublicKey:
    """One usable key of an auth/jwt JWKS: its kid and RSA public key."""

    kid: str
    key: rsa.RSAPublicKey

    @property
    def bits(self) -> int:
        return self.key.key_size

    def __repr__(self) -> str:
        return f"RS256PublicKey(kid={self.kid!r}, bits={self.bits})"


class RS256KeySet:
    """The RS256 public keys of ``AuthAltParameters jwks=PATH``, by kid.

    Slurm's rules: ``{"keys":[...]}``; a key whose ``alg`` is given and is not
    RS256 (compared case-insensitively) or whose ``kty`` is not RSA is skipped,
    and so is a key whose ``use`` is given and is not "sig" (RFC 7517: an
    encryption key must not verify signatures). A usable key needs a ``kid``
    and its public key as ``n``/``e`` and/or an ``x5c`` certificate (Azure
    style). The first key with a given kid wins, as in Slurm's lookup. We also
    refuse moduli under :data:`MIN_RSA_BITS` bits. A file with no usable key is
    an error: it could never verify anything.
    """

    __slots__ = ("_keys", "source")

    def __init__(self, keys: Mapping[str, RS256PublicKey], source: str = "<jwks>") -> None:
        self._keys: Dict[str, RS256PublicKey] = dict(keys)
        self.source = source

    def __repr__(self) -> str:
        return f"<RS256KeySet {self.source!r} kids={sorted(self._keys)}>"

    def __len__(self) -> int:
        return len(self._keys)

    def __iter__(self) -> Iterator[RS256PublicKey]:
        return iter(self._keys.values())

    @property
    def kids(self) -> Tuple[str, ...]:
        return tuple(self._keys)

    def lookup(self, kid: str) -> RS256PublicKey:
        try:
            return self._keys[kid]
        except KeyError:
            raise KeyIdError(f"no RS256 key with kid {kid[:64]!r} in {self.source}") from None

    @classmethod
    def from_jwks(cls, text: Union[str, bytes], source: str = "<jwks>", *,
                  min_bits: int = MIN_RSA_BITS) -> "RS256KeySet":
        raw = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        doc = loads_object(raw, JWKSError, f"jwks {source}")
        entries = doc.get("keys")
        if not isinstance(entries, list):
            raise JWKSError(f"jwks {source}: \"keys\" must be a JSON array")
        keys: Dict[str, RS256PublicKey] = {}
        for i, d in enumerate(entries):
            where = f"jwks {source} key #{i}"
            if not isinstance(d, dict):
                raise JWKSError(f"{where}: not a JSON object")
            alg, kty, use = d.get("alg"), d.get("kty"), d.get("use")
            if alg is not None and (not isinstance(alg, str) or alg.upper() != "RS256"):
                log.debug("%s: skipped (alg %r is not RS256)", where, alg)
                continue
            if kty != "RSA" or (use is not None and use != "sig"):
                log.debug("%s: skipped (kty %r, use %r: not an RSA signing key)", where, kty, use)
                continue
            kid = d.get("kid")
            if not isinstance(kid, str) or not kid:
                raise JWKSError(f"{where}: an RS256 key needs a non-empty string kid")
            pub = _rsa_public_key(d, f"{where} (kid {kid!r})")
            if pub.key_size < min_bits:
                raise JWKSError(f"{where} (kid {kid!r}): RSA modulus of {pub.key_size} bits "
                                f"is under the {min_bits}-bit minimum")
            if kid in keys:
                log.warning("%s: duplicate kid %r ignored (the first one is used, as Slurm does)", where, kid)
                continue
            keys[kid] = RS256PublicKey(kid, pub)
        if not keys:
            raise JWKSError(f"jwks {source}: no usable RS256 key (kty RSA, alg RS256, kid, n/e or x5c)")
        return cls(keys, source)

    @classmethod
    def load(cls, path: PathLike, *, slurm_user_uid: Optional[int] = None,
             min_bits: int = MIN_RSA_BITS) -> "RS256KeySet":
        """Read a JWKS file: readable by others is fine, writable by others is fatal."""
        buf = read_key_file(path, bad_mode=NO_OTHER_WRITE, slurm_user_uid=slurm_user_uid)
        return cls.from_jwks(bytes(buf), os.fspath(path), min_bits=min_bits)


# --- minting (scontrol token) -----------------------------------------------

def _user_name(uid: int) -> Optional[str]:
    try:
        return pwd.getpwuid(uid).pw_name
    except (KeyError, OverflowError):
        return None


def check_lifespan(lifespan: int) -> int:
    """Slurm refuses a lifespan <= 0 or >= NO_VAL (4294967294)."""
    if isinstance(lifespan, bool) or not isinstance(lifespan, int):
        raise LifespanError(f"lifespan must be an integer number of seconds, not {type(lifespan).__name__}")
    if lifespan <= 0 or lifespan >= NO_VAL:
        raise LifespanError(f"cannot issue token: requested lifespan {lifespan}s not supported "
                            f"(must be 1 .. {NO_VAL - 1})")
    return lifespan


def create_token(key: HS256Key, username: Optional[str] = None, *, lifespan: int = DEFAULT_LIFESPAN,
                 caller_uid: Optional[int] = None, slurm_user_uid: int = 0,
                 disable_token_creation: bool = False, now: Optional[int] = None,
                 client_ids: bool = False) -> str:
    """Mint a token exactly as ``scontrol token`` (slurmctld with libjwt) does.

    Claims ``{"exp": now + lifespan, "iat": now, "sun": username}`` as compact
    sorted JSON under ``{"alg":"HS256","typ":"JWT"}``. ``username`` defaults to
    the caller's own name; ``caller_uid`` (default ``os.getuid()``) may mint for
    another user only if it is root or ``slurm_user_uid``. With
    ``disable_token_creation`` only root and SlurmUser may mint at all.

    ``client_ids=True`` (not something scontrol does) adds the user's ``uid``,
    ``gid`` and ``id`` object from the local user database, for controllers
    that run with ``use_jwt_client_ids[_only]`` and do not know the user.
    """
    check_lifespan(lifespan)
    uid = os.getuid() if caller_uid is None else caller_uid
    privileged = uid == 0 or uid == slurm_user_uid
    if disable_token_creation and not privileged:
        raise TokenCreationDeniedError(
            f"token creation is disabled (AuthAltParameters disable_token_creation) for uid {uid}")
    own = _user_name(uid)
    if username is None:
        if own is None:
            raise TokenCreationError(f"uid {uid} has no user name; give the username explicitly")
        username = own
    if not isinstance(username, str) or not username or "\0" in username:
        raise BadArgumentError("username must be a non-empty string without NUL bytes")
    if username != own and not privileged:
        raise TokenCreationDeniedError(
            f"uid {uid} may not create a token for user {username!r}: only root or SlurmUser may")
    iat = int(time.time()) if now is None else int(now)
    exp = iat + lifespan
    if exp > _INT64[1]:
        raise LifespanError("token expiry does not fit in 64 bits")
    claims: Dict[str, Any] = {"exp": exp, "iat": iat, "sun": username}
    if client_ids:
        try:
            user_uid, user_gid = lookup_user(username)
        except UnknownUserError as err:
            raise TokenCreationError(f"client ids: {err}") from None
        ident = identity_from_user(user_uid, user_gid)
        claims.update(uid=user_uid, gid=user_gid, id=ident.to_json())
    return key.sign_raw(_HEADER_HS256, dumps_compact(claims))


# --- verification -------------------------------------------------------------

@dataclass(frozen=True)
class JWTCredential:
    """A verified auth/jwt token.

    ``username`` is the user named in the token. ``acting_for`` is set when the
    client packed a different username and the token's user (root or
    SlurmUser, e.g. slurmrestd's token) is allowed to act for it. ``uid``,
    ``gid`` and ``identity`` describe the user the request is authenticated
    as, :attr:`effective_user`: ``acting_for`` when set, else ``username``
    (Slurm uses the packed username in that case). ``identity`` is the "id"
    object from the claims under use_jwt_client_ids, else None (Slurm's
    auth/jwt has no identity of its own). ``kid`` is the RS256 key id (None
    for HS256).
    """

    username: str
    uid: int
    gid: int
    iat: int
    exp: int
    alg: str
    kid: Optional[str]
    identity: Optional[Identity]
    acting_for: Optional[str]

    @property
    def effective_user(self) -> str:
        return self.acting_for if self.acting_for is not None else self.username


# How the user database is consulted: a cache per verifier (see UserCache).
_new = object.__new__
_RS256 = _aj.ALG_RS256
_HS256 = _aj.ALG_HS256
_NOW_CLOCK = _aj.NOW_CLOCK
_verify_local = _aj.verify_local
_verify_local_now = _aj.verify_local_now
_local_view = _aj.local_view
_E_SCRATCH = _aj.E_SCRATCH
# The fast path in JWTVerifier._finish indexes the result by position.
assert (_aj.STATUS, _aj.ALG, _aj.EXP, _aj.IAT, _aj.USER_OFF, _aj.USER_LEN, _aj.UID) == tuple(range(7))
_set = object.__setattr__
_INT64_MAX = _INT64[1]


def _message(status: int, r: Tuple[int, ...], buf: memoryview, userclaimfield: Optional[str]) -> str:
    """The message for a token the C verifier refused: names the claim, the
    alg or the rule at fault (never key material)."""
    claim = _aj.CLAIM_NAMES[r[_aj.ERR_CLAIM]] if r[_aj.ERR_CLAIM] >= 0 else None
    if claim is None and r[_aj.ERR_CLAIM] == _aj.CLAIM_NAMES.index(None):
        claim = userclaimfield
    if status == _lib.SC_E_ALG:
        alg = _aj.field_str(buf, r[_aj.ALG_OFF], r[_aj.ALG_LEN])
        return f"alg {alg[:32]!r} is not supported by auth/jwt (HS256 or RS256 only)"
    if status in (_lib.SC_E_EXP_MISSING, _lib.SC_E_IAT_MISSING, _lib.SC_E_UID_MISSING,
                  _lib.SC_E_GID_MISSING):
        return f"required claim {claim!r} is missing"
    if status == _lib.SC_E_INT_TYPE:
        return f"claim {claim!r} must be an integer"
    if status == _lib.SC_E_INT_RANGE:
        return f"claim {claim!r} is out of range"
    if status == _lib.SA_E_JWT_INT64:
        return f"claim {claim!r} is an integer beyond int64 (jansson, so Slurm, refuses it)"
    if status == _lib.SC_E_EXPIRED:
        return "token expired"
    if status == _lib.SA_E_JWT_USER_EMPTY:
        return f"claim {claim!r} is not a valid user name"
    if status == _lib.SA_E_JWT_NO_USER:
        fields = ["sun", "username"] + ([userclaimfield] if userclaimfield else [])
        return f"the token names no user (no string claim {', '.join(map(repr, fields))})"
    if status == _lib.SC_E_UTF8:
        return ("claims: a string holds invalid UTF-8, a control character, a bad escape, "
                "a \\u0000 escape or an unpaired surrogate escape")
    if status == _lib.SC_E_CLAIM_DUP:
        return "claims have a duplicate key"
    if status == _lib.SC_E_CLAIMS_JSON:
        return "claims are not a strict JSON object (or hold a number jansson refuses)"
    if status == _lib.SC_E_DEPTH:
        return f"claims nest deeper than {_lib.SC_MAX_DEPTH} levels"
    if status == _lib.SA_E_JWT_TOO_MANY:
        return f"claims hold more than {_lib.AJ_MAX_MEMBERS} members"
    if status == _lib.SC_E_HEADER_JSON:
        return "JOSE header is not a strict JSON object"
    if status == _lib.SC_E_HEADER_DUP:
        return "JOSE header has a duplicate key"
    if status == _lib.SC_E_TYP:
        return "JOSE header typ is not JWT"
    if status == _lib.SC_E_ALG_MISSING:
        return "JOSE header has no alg"
    if status == _lib.SC_E_KID_TYPE:
        return "RS256 token kid is not a string"
    if status == _lib.SA_E_ARG:
        return "invalid argument (the HS256 key has been closed)"
    if status == _lib.SA_E_JWT_NO_HS256_KEY:
        return "HS256 token, but no HS256 key is loaded (RS256-only configuration)"
    return STATUS[status][1] if status in STATUS else f"unknown C status {status}"


def _refusal(status: int, r: Tuple[int, ...], buf: memoryview, userclaimfield: Optional[str]) -> SlurmAuthError:
    """The exception for a refused token: the class from the status table
    (:mod:`slurmauth_fast._bindings.status`), the message from :func:`_message`."""
    cls = STATUS[status][0] if status in STATUS else SlurmAuthError
    claim = _aj.CLAIM_NAMES[r[_aj.ERR_CLAIM]] if r[_aj.ERR_CLAIM] >= 0 else None
    if r[_aj.ERR_CLAIM] == _aj.CLAIM_NAMES.index(None):
        claim = userclaimfield
    if status == _lib.SC_E_EXPIRED:
        claim = "exp"
    return cls(_message(status, r, buf, userclaimfield), status=status, claim=claim)


class JWTVerifier:
    """Verifies auth/jwt tokens as slurmctld and slurmdbd do (see the module doc).

    Build it from keys directly, or with :meth:`from_config` from an
    AuthAltParameters string and StateSaveLocation, applying Slurm's key
    precedence and permission checks.

    Each token is one C call (``csrc/jwtverify.c``: split, strict header and
    claims scan, HS256 MAC; for RS256 the signature is checked here with
    ``cryptography`` over what C split and decoded). User names are resolved
    through ``users``, a :class:`~slurmauth_fast.users.UserCache` (by default
    one per verifier, answers kept :data:`~slurmauth_fast.users.DEFAULT_TTL`
    seconds): never a user database lookup per token. A token seen again
    (clients reuse ``SLURM_JWT`` for its whole lifespan) is still verified in
    C, and then gets the credential built for that same token before, while
    the user database answer it holds is current (at most
    :data:`CREDENTIALS_MAX` kept, of tokens up to
    :data:`CREDENTIAL_TOKEN_MAX` bytes; only verified HS256 tokens get in).
    """

    def __init__(self, *, hs256_key: Optional[HS256Key] = None, jwks: Optional[RS256KeySet] = None,
                 userclaimfield: Optional[str] = None, use_jwt_client_ids: bool = False,
                 use_jwt_client_ids_only: bool = False, slurm_user_uid: int = 0,
                 max_len: int = DEFAULT_MAX_TOKEN, users: Optional[UserCache] = None) -> None:
        if hs256_key is None and jwks is None:
            raise BadArgumentError("an auth/jwt verifier needs an HS256 key, a JWKS or both")
        if userclaimfield is not None and (not isinstance(userclaimfield, str) or "\0" in userclaimfield):
            raise BadArgumentError("userclaimfield must be a str without NUL bytes")
        self._hs256_key = hs256_key
        self._jwks = jwks
        self._userclaimfield = userclaimfield or None
        self._use_jwt_client_ids = use_jwt_client_ids or use_jwt_client_ids_only
        self._use_jwt_client_ids_only = use_jwt_client_ids_only
        self.slurm_user_uid = slurm_user_uid
        self._max_len = max_len
        self._users = users if users is not None else UserCache()
        self._cached_user = self._users.entries.get
        # a verified HS256 token without client ids (as given: bytes or str) ->
        # (its credential, the UserCache entry that credential used, the user name)
        self._creds: BoundedCache[TokenLike,
                                  Tuple[JWTCredential, Tuple[float, int, int], str]] = BoundedCache(CREDENTIALS_MAX)
        self._cred_get = self._creds.get
        self._user_clock = self._users.clock
        self._policy = _aj.Policy(hs256_key.cdata if hs256_key is not None else None,
                                  jwks is not None, max_len, self._userclaimfield,
                                  self._use_jwt_client_ids)
        self._policy_c = self._policy.cdata

    # The configuration the C policy was built from: read-only.
    @property
    def hs256_key(self) -> Optional[HS256Key]:
        return self._hs256_key

    @property
    def jwks(self) -> Optional[RS256KeySet]:
        return self._jwks

    @property
    def userclaimfield(self) -> Optional[str]:
        return self._userclaimfield

    @property
    def use_jwt_client_ids(self) -> bool:
        return self._use_jwt_client_ids

    @property
    def use_jwt_client_ids_only(self) -> bool:
        return self._use_jwt_client_ids_only

    @property
    def max_len(self) -> int:
        return self._max_len

    @property
    def users(self) -> UserCache:
        """The cache user names resolve through."""
        return self._users

    @property
    def c_policy(self) -> Any:
        """The ``aj_policy *`` this verifier's tokens are checked with in C, for a
        C consumer of auth/jwt tokens (:class:`~slurmauth_fast.rpc.FrameVerifier`'s
        one call per frame), which hands the result to :meth:`finish`."""
        return self._policy_c

    def finish(self, result: memoryview, token: bytes, username: Optional[str]) -> JWTCredential:
        """What :meth:`verify` gives ``token`` once C has checked it with
        :attr:`c_policy` into ``result`` (a scratch holding the ``aj_result``
        first, as ``csrc/jwtverify.h`` lays it out): the credential, after the
        RS256 signature and the user steps, or the exception of the rule broken."""
        return self._finish(_aj.head(result), result, token, username)

    def __repr__(self) -> str:
        algs = [a for a, k in (("HS256", self._hs256_key), ("RS256", self._jwks)) if k is not None]
        return f"<JWTVerifier algs={algs} slurm_user_uid={self.slurm_user_uid}>"

    @classmethod
    def from_config(cls, params: Union[str, AuthAltParameters, None] = None, *,
                    state_save_location: Optional[PathLike] = None, slurm_user_uid: int = 0,
                    max_len: int = DEFAULT_MAX_TOKEN, users: Optional[UserCache] = None) -> "JWTVerifier":
        """Load keys like slurmctld: the jwks (if ``jwks=``), then the HS256 key
        from ``jwt_key=``, or StateSaveLocation/jwt_hs256.key unless a jwks is
        configured without ``jwt_key=``."""
        p = params if isinstance(params, AuthAltParameters) else AuthAltParameters.parse(params)
        jwks = RS256KeySet.load(p.jwks, slurm_user_uid=slurm_user_uid) if p.jwks else None
        path = p.hs256_key_path(state_save_location)
        key = load_hs256_key(path, slurm_user_uid=slurm_user_uid) if path else None
        return cls(hs256_key=key, jwks=jwks, userclaimfield=p.userclaimfield,
                   use_jwt_client_ids=p.use_jwt_client_ids,
                   use_jwt_client_ids_only=p.use_jwt_client_ids_only,
                   slurm_user_uid=slurm_user_uid, max_len=max_len, users=users)

    # -- verification ----------------------------------------------------------

    @staticmethod
    def _when(now: Optional[int]) -> int:
        """``now`` for C: an int64 (a float is rounded up: ``exp < now`` for an
        integer exp is then the same), or NOW_CLOCK for the current time."""
        if now is None:
            return _aj.NOW_CLOCK
        if type(now) is not int:
            if isinstance(now, bool) or not isinstance(now, (int, float)):
                raise BadArgumentTypeError(f"now must be an int, not {type(now).__name__}")
            now = math.ceil(now)
        if not _aj.NOW_CLOCK < now <= _INT64_MAX:
            raise BadArgumentError("now is beyond int64")
        return now

    def verify(self, token: TokenLike, *, username: Optional[str] = None,
               now: Optional[int] = None) -> JWTCredential:
        """Verify ``token`` as slurmctld does. ``username`` is the name the client
        packed beside it (None when it packed none). Raises a
        :class:`~slurmauth_fast.errors.CredentialError` subclass naming the rule."""
        if username is not None and type(username) is not str:
            raise BadArgumentTypeError(f"username must be a str or None, not {type(username).__name__}")
        if type(token) is str and token.isascii():
            tok = token.encode()                    # ASCII: the UTF-8 encoder's copy
        else:
            tok = token if type(token) is bytes else as_token_bytes(token)
        if now is None:
            status = _verify_local_now(self._policy_c, tok, len(tok))
            when = _NOW_CLOCK
        else:
            when = now if type(now) is int and _NOW_CLOCK < now <= _INT64_MAX else self._when(now)
            status = _verify_local(self._policy_c, tok, len(tok), when)
        if not status:
            # C verified this very token (an RS256 one only up to its signature, but
            # only HS256 tokens are kept): the credential built for it before, while
            # the user database answer it used is current
            hit = self._cred_get(tok)
            if hit is not None:
                cred, used, name = hit
                if (used[0] > self._user_clock() and self._cached_user(name) is used
                        and (username is None or username == name)):
                    return cred
        if status == _E_SCRATCH:                    # longer than LOCAL_TOKEN
            status, view = _aj.verify(self._policy, tok, when)
        else:
            view = _local_view()
        return self._finish(_aj.head(view), view, tok, username)

    def verify_many(self, tokens: Sequence[TokenLike], *,
                    usernames: Optional[Sequence[Optional[str]]] = None,
                    now: Optional[int] = None) -> List[Union[JWTCredential, CredentialError]]:
        """Verify many tokens in one C call (the GIL is released for it; the
        MACs of consecutive HS256 tokens are computed two at a time). Token i
        gets exactly what :meth:`verify` would give it (with ``usernames[i]``
        as its packed username): its :class:`JWTCredential`, or the
        :class:`~slurmauth_fast.errors.CredentialError` it would raise,
        returned in its place. Argument errors are raised."""
        toks = tokens if type(tokens) is list or type(tokens) is tuple else list(tokens)
        n = len(toks)
        if usernames is None:
            names: Sequence[Optional[str]] = [None] * n
        else:
            names = list(usernames)
            if len(names) != n:
                raise BadArgumentError("usernames must have one entry per token")
            for u in names:
                if u is not None and type(u) is not str:
                    raise BadArgumentTypeError(f"username must be a str or None, not {type(u).__name__}")
        when = self._when(now)
        packed: Optional[bytes] = None
        if n and type(toks[0]) is str:              # the common case, all str: one join, one encode
            try:
                packed = "".join(cast(List[str], toks)).encode("ascii")
            except (TypeError, UnicodeEncodeError):
                packed = None                       # mixed types or a non-ASCII str: one by one
        if packed is None:
            toks = [t if type(t) is bytes else as_token_bytes(t) for t in toks]
            packed = b"".join(cast(List[bytes], toks))
        results, buf = _aj.verify_many(self._policy, packed, [len(t) for t in toks], when)
        finish = self._finish
        try:                                        # refusals are rare: no try per token unless one comes
            return [finish(r, buf, tok, name) for r, tok, name in zip(results, toks, names)]
        except CredentialError:
            pass
        out: List[Union[JWTCredential, CredentialError]] = []
        for r, tok, name in zip(results, toks, names):
            try:
                out.append(finish(r, buf, tok, name))
            except CredentialError as err:
                out.append(err)
        return out

    def _finish(self, r: Tuple[int, ...], buf: memoryview, tok: TokenLike,
                username: Optional[str]) -> JWTCredential:
        """The credential of a token C has checked (result ``r`` in ``buf``: all
        its fields, or the first :data:`~slurmauth_fast._bindings.authjwt.HEAD`),
        or the exception of the rule it broke.

        A verified HS256 token without client ids that got a credential before
        gets that same credential, while the user database answer it used is
        still the cache's: a client reuses its token (``SLURM_JWT``) for its
        lifespan. The token itself is the key: the same bytes, the same claims."""
        if r[0] == 0 and r[1] == _HS256 and r[6] < 0:   # status, alg, uid from the claims
            hit = self._cred_get(tok)
            if hit is not None:
                cred, used, name = hit
                if (used[0] > self._user_clock() and self._cached_user(name) is used
                        and (username is None or username == name)):
                    return cred
            return self._credential(r, buf, tok, username, buf[r[4]:r[4] + r[5]].tobytes())
        if len(r) == _aj.HEAD:                           # verify() unpacked only the head
            r = _aj.result(buf)
        if r[0]:
            raise _refusal(r[0], r, buf, self._userclaimfield)
        return self._credential(r, buf, tok, username, buf[r[4]:r[4] + r[5]].tobytes())

    def _credential(self, r: Tuple[int, ...], buf: memoryview, tok: TokenLike, username: Optional[str],
                    raw: bytes) -> JWTCredential:
        """:meth:`_finish` for a token C accepted, without a credential to reuse."""
        kid: Optional[str] = None
        if r[1] == _RS256:
            kid = self._check_rs256(r if len(r) > _aj.HEAD else _aj.result(buf), buf, tok)
        name = raw.decode("utf-8")
        if (r[6] < 0 or not self._use_jwt_client_ids) and (username is None or username == name):
            if self._use_jwt_client_ids_only:      # r[6]: uid from the claims, -1 without
                raise UnknownUserError("use_jwt_client_ids_only: the token carries no uid/gid claims")
            entry = self._cached_user(name)         # UserCache.entry, its hits inlined
            if entry is None or entry[0] <= self._user_clock():
                entry = self._users.entry(name)
            if entry[1] < 0:
                raise UnknownUserError(f"user {name[:64]!r} is not in the local user database")
            cred = _new(JWTCredential)
            _set(cred, "__dict__", {"username": name, "uid": entry[1], "gid": entry[2], "iat": r[3],
                                    "exp": r[2], "alg": "HS256" if kid is None else "RS256", "kid": kid,
                                    "identity": None, "acting_for": None})
            if kid is None and r[6] < 0 and len(tok) <= CREDENTIAL_TOKEN_MAX:
                creds = self._creds
                if len(creds) >= CREDENTIALS_MAX:
                    creds.clear()                   # full (of tokens since expired, mostly): start over
                creds[tok] = (cred, entry, name)
            return cred
        return self._with_ids(r if len(r) > _aj.HEAD else _aj.result(buf), buf, name, kid, username)

    def _check_rs256(self, r: Tuple[int, ...], buf: memoryview, tok: TokenLike) -> str:
        """The RS256 steps after the header: kid lookup, signature decode and
        length, the signature itself, then the claims' outcome C kept aside."""
        assert self._jwks is not None      # C refuses RS256 without a jwks
        kid = _aj.field_str(buf, r[_aj.KID_OFF], r[_aj.KID_LEN])
        pub = self._jwks.lookup(kid)
        if r[_aj.SIG_STATUS]:
            raise error_for_status(r[_aj.SIG_STATUS])
        sig = _aj.field_bytes(buf, r[_aj.SIG_OFF], r[_aj.SIG_LEN])
        if len(sig) != (pub.bits + 7) // 8:
            raise SignatureLengthError(f"RS256 signature is {len(sig)} bytes, not {(pub.bits + 7) // 8}")
        try:
            signed = tok[:r[_aj.SIGNING_LEN]]
            pub.key.verify(sig, signed if type(signed) is bytes else as_token_bytes(signed),
                           padding.PKCS1v15(), SHA256())
        except InvalidSignature:
            raise SignatureError("RS256 signature mismatch") from None
        if r[_aj.CLAIMS_STATUS]:
            raise _refusal(r[_aj.CLAIMS_STATUS], r, buf, self._userclaimfield)
        return kid

    def _with_ids(self, r: Tuple[int, ...], buf: memoryview, name: str, kid: Optional[str],
                  username: Optional[str]) -> JWTCredential:
        """The rest of :meth:`verify` for client ids from the claims and a packed
        username that differs from the token's user."""
        ids: Optional[Tuple[int, int, Optional[Identity]]] = None
        if self._use_jwt_client_ids and r[_aj.UID] >= 0:
            identity: Optional[Identity] = None
            if r[_aj.ID_LEN] >= 0:
                raw = _aj.field_bytes(buf, r[_aj.ID_OFF], r[_aj.ID_LEN])
                identity = parse_identity(loads_object(b'{"id":' + raw + b"}", ClaimsError, "claims")["id"])
                if identity.name != name:
                    raise ClaimsError(f"id.name {identity.name[:64]!r} is not the token's user {name[:64]!r}")
            ids = (r[_aj.UID], r[_aj.GID], identity)
        if ids is None and self._use_jwt_client_ids_only:
            raise UnknownUserError("use_jwt_client_ids_only: the token carries no uid/gid claims")

        acting_for: Optional[str] = None
        if username is not None and username != name:
            token_uid = ids[0] if ids is not None else self._users.lookup(name)[0]
            if token_uid != 0 and token_uid != self.slurm_user_uid:
                raise AlternateUserError(
                    f"token of user {name[:64]!r} (uid {token_uid}) may not act for {username[:64]!r}: "
                    "only root or SlurmUser may")
            if self._use_jwt_client_ids_only:
                raise UnknownUserError(f"use_jwt_client_ids_only: cannot resolve packed user {username[:64]!r}")
            acting_for = username
            ids = None  # the claims describe the token's user, not the one acted for
        if ids is None:
            uid, gid = self._users.lookup(acting_for if acting_for is not None else name)
            identity = None
        else:
            uid, gid, identity = ids
        return JWTCredential(username=name, uid=uid, gid=gid, iat=r[_aj.IAT], exp=r[_aj.EXP],
                             alg="RS256" if kid is not None else "HS256", kid=kid,
                             identity=identity, acting_for=acting_for)
