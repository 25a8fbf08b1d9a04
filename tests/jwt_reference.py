"""The auth/jwt verifier as it was before csrc/jwtverify.c: strict JSON
parsed in Python (jsonutil.loads_object), the HS256 MAC through
HS256Key.verify_raw, RS256 through cryptography, getpwnam per token. Kept
verbatim (only renamed) as the oracle the C verifier's decisions are compared
with (tests/test_jwt_fast.py)."""
from __future__ import annotations

import time
from typing import Any, Dict, Mapping, Optional, Tuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.hashes import SHA256

from slurmauth_fast.errors import (
    AlgorithmError, AlternateUserError, Base64Error, BadArgumentTypeError, ClaimsError, ExpiredError,
    HeaderError, KeyIdError, SegmentError, SignatureError, SignatureLengthError, TokenTooLargeError,
    UnknownUserError, UserClaimError,
)
from slurmauth_fast.identity import Identity, parse_identity
from slurmauth_fast.jsonutil import loads_object
from slurmauth_fast.jws import TokenLike, as_token_bytes
from slurmauth_fast.jwt import MAX_ID, JWTCredential, JWTVerifier, _b64
from slurmauth_fast.users import lookup_user as _lookup_user

_INT64 = (-(2**63), 2**63 - 1)


def _int_claim(claims: Mapping[str, Any], name: str, lo: int, hi: int) -> int:
    if name not in claims:
        raise ClaimsError(f"required claim {name!r} is missing", claim=name)
    v = claims[name]
    if isinstance(v, bool) or not isinstance(v, int):
        raise ClaimsError(f"claim {name!r} must be an integer, not {type(v).__name__}", claim=name)
    if not lo <= v <= hi:
        raise ClaimsError(f"claim {name!r} is out of range", claim=name)
    return v



class OldJWTVerifier:
    """The old verification methods, over a new JWTVerifier's configuration."""

    def __init__(self, v: JWTVerifier) -> None:
        self.hs256_key, self.jwks, self.userclaimfield = v.hs256_key, v.jwks, v.userclaimfield
        self.use_jwt_client_ids, self.use_jwt_client_ids_only = v.use_jwt_client_ids, v.use_jwt_client_ids_only
        self.slurm_user_uid, self.max_len = v.slurm_user_uid, v.max_len

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

