"""HS256 compact JWS/JWT signing and verification over the C core.

One call into C per token: the size limit, the segment split, strict
base64url, the HMAC and the constant-time tag comparison all happen there,
with the GIL released (cffi releases it around every C call). Python only
parses the JSON that the MAC has already authenticated.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

from ._core import ffi, lib
from .errors import AlgorithmError, BadArgumentError, ClaimsError, HeaderError, raise_for_status
from .jsonutil import dumps_compact, loads_object

#: Default largest token accepted, in bytes. Slurm's own credentials are a few
#: hundred bytes; identity objects with many groups and launch credentials
#: carrying a packed job credential reach tens of KiB.
DEFAULT_MAX_TOKEN = 256 * 1024

BytesLike = Union[bytes, bytearray, memoryview]
TokenLike = Union[str, bytes, bytearray, memoryview]


def as_token_bytes(token: TokenLike) -> bytes:
    """Tokens are ASCII; a str with other characters can never verify."""
    if isinstance(token, str):
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise HeaderError("token contains non-ASCII characters") from None
    if isinstance(token, (bytes, bytearray, memoryview)):
        return bytes(token)
    raise BadArgumentError(f"token must be str or bytes, not {type(token).__name__}")


@dataclass(frozen=True)
class VerifiedJWS:
    """A token whose HS256 tag verified: its decoded header and claims."""

    header: Dict[str, Any]
    claims: Dict[str, Any]


class HS256Key:
    """An HMAC-SHA256 key with its inner/outer states precomputed in C memory.

    The raw key bytes are not kept: only the two SHA-256 states derived from
    them, which are wiped (overwritten with zeros) when the key is closed or
    garbage-collected. ``repr`` never shows key material.
    """

    __slots__ = ("_ctx", "__weakref__")

    def __init__(self, key: BytesLike) -> None:
        if not isinstance(key, (bytes, bytearray, memoryview)):
            raise BadArgumentError(f"key must be bytes, not {type(key).__name__}")
        ctx = ffi.gc(ffi.new("sa_hmac_key *"), lib.sa_hmac_key_wipe)
        buf = ffi.from_buffer(key)
        raise_for_status(lib.sa_hmac_key_init(ctx, buf, len(buf)), "HS256 key")
        self._ctx = ctx

    def __repr__(self) -> str:
        state = "closed" if not self._ctx.ready else "loaded"
        return f"<HS256Key {state}, secret not shown>"

    @property
    def cdata(self) -> Any:
        """The ``sa_hmac_key *`` for other C entry points (internal)."""
        if not self._ctx.ready:
            raise BadArgumentError("HS256 key has been closed")
        return self._ctx

    def close(self) -> None:
        """Wipe the precomputed states now; the key is unusable afterwards."""
        lib.sa_hmac_key_wipe(self._ctx)

    def __enter__(self) -> "HS256Key":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mac(self, message: BytesLike) -> bytes:
        """HMAC-SHA256(key, message)."""
        out = ffi.new("uint8_t[32]")
        buf = ffi.from_buffer(message)
        lib.sa_hmac_sha256(self.cdata, buf, len(buf), out)
        return bytes(out)

    def sign_raw(self, header: bytes, claims: bytes) -> str:
        """Sign already-serialised header and claims JSON bytes."""
        cap = lib.sa_jws_hs256_signed_len(len(header), len(claims))
        out = ffi.new("char[]", cap)
        outlen = ffi.new("size_t *")
        raise_for_status(
            lib.sa_jws_hs256_sign(self.cdata, header, len(header), claims, len(claims), out, cap, outlen),
            "sign",
        )
        return ffi.unpack(out, outlen[0]).decode("ascii")

    def sign(self, claims: Mapping[str, Any], header: Optional[Mapping[str, Any]] = None) -> str:
        """Sign ``claims`` as a JWT. The header is ``{"alg":"HS256","typ":"JWT"}``
        plus ``header`` (e.g. ``{"kid": ...}``), serialised like libjwt."""
        hdr: Dict[str, Any] = {"alg": "HS256", "typ": "JWT"}
        if header:
            hdr.update(header)
            if hdr["alg"] != "HS256":
                raise BadArgumentError("an HS256 key signs only alg HS256")
        return self.sign_raw(dumps_compact(hdr), dumps_compact(dict(claims)))

    def verify_raw(self, token: TokenLike, *, max_len: int = DEFAULT_MAX_TOKEN) -> "tuple[bytes, bytes]":
        """Check size, shape and tag; return the decoded header and claims bytes."""
        tok = as_token_bytes(token)
        cap = lib.sa_b64_decoded_max(len(tok)) if len(tok) <= max_len else 0
        buf = ffi.new("uint8_t[]", 2 * cap + 2)
        lens = ffi.new("size_t[2]")
        raise_for_status(
            lib.sa_jws_hs256_verify(self.cdata, tok, len(tok), max_len,
                                    buf, cap + 1, lens, buf + cap + 1, cap + 1, lens + 1)
        )
        return ffi.buffer(buf, lens[0])[:], ffi.buffer(buf + cap + 1, lens[1])[:]

    def verify(self, token: TokenLike, *, max_len: int = DEFAULT_MAX_TOKEN) -> VerifiedJWS:
        """Verify an HS256 token: size limit, shape, strict base64url, tag (constant
        time), then the header (a JSON object whose alg is exactly ``HS256``) and
        the claims (a JSON object). Raises a :class:`~slurmauth_fast.errors.CredentialError`
        subclass naming the first rule broken."""
        raw_hdr, raw_claims = self.verify_raw(token, max_len=max_len)
        header = loads_object(raw_hdr, HeaderError, "JOSE header")
        check_alg(header, "HS256")
        claims = loads_object(raw_claims, ClaimsError, "claims")
        return VerifiedJWS(header, claims)


def check_alg(header: Mapping[str, Any], expected: str) -> None:
    """The header's alg must be exactly ``expected`` (case-sensitive, as RFC 7515
    requires); "none", a missing alg or any other algorithm is refused."""
    if "alg" not in header:
        raise AlgorithmError("JOSE header has no alg")
    alg = header["alg"]
    if not isinstance(alg, str):
        raise AlgorithmError("JOSE header alg is not a string")
    if alg != expected:
        raise AlgorithmError(f"alg {alg[:32]!r} is not {expected}")
