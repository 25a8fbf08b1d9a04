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
HS256 verification runs in the C core (:class:`~slurmauth_fast.jws.HS256Key`);
RS256 uses ``cryptography``.

Inside the package import this module as ``from . import jwt as slurm_jwt``:
``import jwt`` elsewhere means PyJWT.
"""
from __future__ import annotations

import logging
import os
import pwd
import time
from dataclasses import dataclass
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple, Union

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.hashes import SHA256

from ._bindings import hs256 as _hs256
from .errors import (
    AlgorithmError,
    AlternateUserError,
    BadArgumentError,
    BadArgumentTypeError,
    Base64Error,
    ClaimsError,
    ExpiredError,
    HeaderError,
    JWKSError,
    KeyFileError,
    KeyIdError,
    LifespanError,
    SegmentError,
    SignatureError,
    SignatureLengthError,
    TokenCreationDeniedError,
    TokenCreationError,
    TokenTooLargeError,
    UnknownUserError,
    UserClaimError,
    error_for_status,
)
from .identity import Identity, identity_from_user, parse_identity
from .jsonutil import dumps_compact, loads_object
from .jws import DEFAULT_MAX_TOKEN, HS256Key, TokenLike, as_token_bytes
from .keyfile import NO_OTHER_ACCESS, NO_OTHER_WRITE, PathLike, read_key_file, wipe

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
            user_uid, user_gid = _lookup_user(username)
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


def _int_claim(claims: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    if name not in claims:
        raise ClaimsError(f"required claim {name!r} is missing", claim=name)
    v = claims[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ClaimsError(f"claim {name!r} must be an integer, not {type(v).__name__}", claim=name)
    if not lo <= v <= hi:
        raise ClaimsError(f"claim {name!r} is out of range", claim=name)
    return v


def _lookup_user(name: str) -> Tuple[int, int]:
    """uid/gid of a user name as Slurm's uid_from_string + gid_from_uid do:
    the name in the user database, else a decimal uid that has an entry."""
    try:
        pw = pwd.getpwnam(name)
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        pass
    if name.isascii() and name.isdigit() and int(name) < MAX_ID:
        try:
            pw = pwd.getpwuid(int(name))
            return pw.pw_uid, pw.pw_gid
        except KeyError:
            pass
    raise UnknownUserError(f"user {name[:64]!r} is not in the local user database")


class JWTVerifier:
    """Verifies auth/jwt tokens as slurmctld and slurmdbd do (see the module doc).

    Build it from keys directly, or with :meth:`from_config` from an
    AuthAltParameters string and StateSaveLocation, applying Slurm's key
    precedence and permission checks.
    """

    def __init__(self, *, hs256_key: Optional[HS256Key] = None, jwks: Optional[RS256KeySet] = None,
                 userclaimfield: Optional[str] = None, use_jwt_client_ids: bool = False,
                 use_jwt_client_ids_only: bool = False, slurm_user_uid: int = 0,
                 max_len: int = DEFAULT_MAX_TOKEN) -> None:
        if hs256_key is None and jwks is None:
            raise BadArgumentError("an auth/jwt verifier needs an HS256 key, a JWKS or both")
        self.hs256_key = hs256_key
        self.jwks = jwks
        self.userclaimfield = userclaimfield or None
        self.use_jwt_client_ids = use_jwt_client_ids or use_jwt_client_ids_only
        self.use_jwt_client_ids_only = use_jwt_client_ids_only
        self.slurm_user_uid = slurm_user_uid
        self.max_len = max_len

    def __repr__(self) -> str:
        algs = [a for a, k in (("HS256", self.hs256_key), ("RS256", self.jwks)) if k is not None]
        return f"<JWTVerifier algs={algs} slurm_user_uid={self.slurm_user_uid}>"

    @classmethod
    def from_config(cls, params: Union[str, AuthAltParameters, None] = None, *,
                    state_save_location: Optional[PathLike] = None, slurm_user_uid: int = 0,
                    max_len: int = DEFAULT_MAX_TOKEN) -> "JWTVerifier":
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
                   slurm_user_uid=slurm_user_uid, max_len=max_len)

    # -- signature -----------------------------------------------------------

    def _check_signature(self, tok: bytes) -> Tuple[Dict[str, Any], str, Optional[str]]:
        """Dispatch on the (unverified, strictly parsed) header's alg, verify the
        signature with the matching key, return (claims, alg, kid)."""
        if len(tok) > self.max_len:
            raise TokenTooLargeError(f"token of {len(tok)} bytes exceeds the {self.max_len}-byte limit")
        parts = tok.split(b".")
        if len(parts) != 3:
            raise SegmentError("token must have exactly three '.'-separated segments")
        if not parts[0] or not parts[1]:
            raise SegmentError("token header or payload segment is empty")
        header = loads_object(_b64(parts[0], Base64Error, "header"), HeaderError, "JOSE header")
        typ = header.get("typ")
        if typ is not None and (not isinstance(typ, str) or typ.upper() != "JWT"):
            raise HeaderError("JOSE header typ is not JWT")
        alg = header.get("alg")
        if alg == "HS256":
            if self.hs256_key is None:
                raise AlgorithmError("HS256 token, but no HS256 key is loaded (RS256-only configuration)")
            # The C core re-splits the same bytes: the header checked above is the one MACed.
            _raw_header, raw_claims = self.hs256_key.verify_raw(tok, max_len=self.max_len)
            return loads_object(raw_claims, ClaimsError, "claims"), "HS256", None
        if alg == "RS256":
            if self.jwks is None:
                raise AlgorithmError("RS256 token, but no jwks is loaded")
            kid = header.get("kid")
            if kid is None:
                raise KeyIdError("RS256 token has no kid")
            if not isinstance(kid, str):
                raise KeyIdError("RS256 token kid is not a string")
            pub = self.jwks.lookup(kid)
            sig = _b64(parts[2], Base64Error, "signature")
            if len(sig) != (pub.bits + 7) // 8:
                raise SignatureLengthError(f"RS256 signature is {len(sig)} bytes, not {(pub.bits + 7) // 8}")
            try:
                pub.key.verify(sig, parts[0] + b"." + parts[1], padding.PKCS1v15(), SHA256())
            except InvalidSignature:
                raise SignatureError("RS256 signature mismatch") from None
            claims = loads_object(_b64(parts[1], Base64Error, "payload"), ClaimsError, "claims")
            return claims, "RS256", kid
        if alg is None:
            raise AlgorithmError("JOSE header has no alg")
        if not isinstance(alg, str):
            raise AlgorithmError("JOSE header alg is not a string")
        raise AlgorithmError(f"alg {alg[:32]!r} is not supported by auth/jwt (HS256 or RS256 only)")

    # -- claims --------------------------------------------------------------

    def _token_user(self, claims: Mapping[str, Any]) -> str:
        fields = ["sun", "username"] + ([self.userclaimfield] if self.userclaimfield else [])
        for f in fields:
            v = claims.get(f)
            if isinstance(v, str):
                if not v or "\0" in v:
                    raise UserClaimError(f"claim {f!r} is not a valid user name", claim=f)
                return v
        raise UserClaimError(f"the token names no user (no string claim {', '.join(map(repr, fields))})")

    def _client_ids(self, name: str, claims: Mapping[str, Any]) -> Optional[Tuple[int, int, Optional[Identity]]]:
        """uid, gid and identity from the claims (use_jwt_client_ids), or None
        when the token carries none of them."""
        if not any(f in claims for f in ("uid", "gid", "id")):
            return None
        uid = _int_claim(claims, "uid", 0, MAX_ID)
        gid = _int_claim(claims, "gid", 0, MAX_ID)
        identity = parse_identity(claims["id"]) if "id" in claims else None
        if identity is not None and identity.name != name:
            raise ClaimsError(f"id.name {identity.name[:64]!r} is not the token's user {name[:64]!r}")
        return uid, gid, identity

    def verify(self, token: TokenLike, *, username: Optional[str] = None,
               now: Optional[int] = None) -> JWTCredential:
        """Verify ``token`` as slurmctld does. ``username`` is the name the client
        packed beside it (None when it packed none). Raises a
        :class:`~slurmauth_fast.errors.CredentialError` subclass naming the rule."""
        if username is not None and not isinstance(username, str):
            raise BadArgumentTypeError(f"username must be a str or None, not {type(username).__name__}")
        claims, alg, kid = self._check_signature(as_token_bytes(token))
        exp = _int_claim(claims, "exp", *_INT64)
        if exp < (int(time.time()) if now is None else now):
            raise ExpiredError("token expired", claim="exp")
        iat = _int_claim(claims, "iat", *_INT64)
        name = self._token_user(claims)

        ids = self._client_ids(name, claims) if self.use_jwt_client_ids else None
        if ids is None and self.use_jwt_client_ids_only:
            raise UnknownUserError("use_jwt_client_ids_only: the token carries no uid/gid claims")

        acting_for: Optional[str] = None
        if username is not None and username != name:
            token_uid = ids[0] if ids is not None else _lookup_user(name)[0]
            if token_uid != 0 and token_uid != self.slurm_user_uid:
                raise AlternateUserError(
                    f"token of user {name[:64]!r} (uid {token_uid}) may not act for {username[:64]!r}: "
                    "only root or SlurmUser may")
            if self.use_jwt_client_ids_only:
                raise UnknownUserError(f"use_jwt_client_ids_only: cannot resolve packed user {username[:64]!r}")
            acting_for = username
            ids = None  # the claims describe the token's user, not the one acted for
        if ids is None:
            uid, gid = _lookup_user(acting_for if acting_for is not None else name)
            identity = None
        else:
            uid, gid, identity = ids
        return JWTCredential(username=name, uid=uid, gid=gid, iat=iat, exp=exp, alg=alg, kid=kid,
                             identity=identity, acting_for=acting_for)

