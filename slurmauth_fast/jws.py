"""HS256 compact JWS/JWT signing and verification over the C core.

One call into C per token: the size limit, the segment split, the
recognition of the usual header segments, strict base64url, the HMAC and the
constant-time tag comparison, and a pre-scan of the claims JSON all happen
there, with the GIL released (cffi releases it around every C call). Python
only parses JSON that the MAC has already authenticated: the claims, with the
json module's scanner when the pre-scan allows (:func:`~.jsonutil.loads_prescanned`),
and the header only when it is not one of the known segments.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Union

from ._bindings import hs256 as _hs256
from .exceptions import AlgorithmError, BadArgumentError, BadArgumentTypeError, ClaimsError, HeaderError
from .jsonutil import dumps_compact, loads_object, loads_prescanned

#: Default largest token accepted, in bytes. Slurm's own credentials are a few
#: hundred bytes; identity objects with many groups and launch credentials
#: carrying a packed job credential reach tens of KiB.
DEFAULT_MAX_TOKEN = 256 * 1024

BytesLike = Union[bytes, bytearray, memoryview]
TokenLike = Union[str, bytes, bytearray, memoryview]


def as_token_bytes(token: TokenLike) -> bytes:
    """Tokens are ASCII; a str with other characters can never verify."""
    if type(token) is bytes:
        return token
    if type(token) is str and token.isascii():
        return token.encode()      # ASCII: the UTF-8 encoder's bytes are the same, sooner
    if isinstance(token, str):
        try:
            return token.encode("ascii")
        except UnicodeEncodeError:
            raise HeaderError("token contains non-ASCII characters") from None
    if isinstance(token, (bytes, bytearray, memoryview)):
        return bytes(token)
    raise BadArgumentTypeError(f"token must be str or bytes, not {type(token).__name__}")


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
            raise BadArgumentTypeError(f"key must be bytes, not {type(key).__name__}")
        self._ctx = _hs256.key_new(key)

    def __repr__(self) -> str:
        state = "loaded" if _hs256.key_ready(self._ctx) else "closed"
        return f"<HS256Key {state}, secret not shown>"

    @property
    def cdata(self) -> Any:
        """The ``sa_hmac_key *`` for other C entry points (internal)."""
        if not _hs256.key_ready(self._ctx):
            raise BadArgumentError("HS256 key has been closed")
        return self._ctx

    def close(self) -> None:
        """Wipe the precomputed states now; the key is unusable afterwards."""
        _hs256.key_wipe(self._ctx)

    def __enter__(self) -> "HS256Key":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def mac(self, message: BytesLike) -> bytes:
        """HMAC-SHA256(key, message)."""
        return _hs256.mac(self.cdata, message)

    def sign_raw(self, header: bytes, claims: bytes) -> str:
        """Sign already-serialised header and claims JSON bytes."""
        return _hs256.sign(self.cdata, header, claims)

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
        return _hs256.verify(self.cdata, as_token_bytes(token), max_len)

    def verify(self, token: TokenLike, *, max_len: int = DEFAULT_MAX_TOKEN) -> VerifiedJWS:
        """Verify an HS256 token: size limit, shape, strict base64url, tag (constant
        time), then the header (a JSON object whose alg is exactly ``HS256``) and
        the claims (a JSON object, read strictly: :func:`~.jsonutil.loads_object`).
        Raises a :class:`~slurmauth_fast.errors.CredentialError` subclass naming
        the first rule broken."""
        raw_claims, kind, raw_hdr, plain, objects, members = _hs256.decode(
            self._ctx, as_token_bytes(token), max_len)
        header = dict(KNOWN_HEADERS[kind]) if raw_hdr is None else parse_header(raw_hdr)
        claims = loads_prescanned(raw_claims, plain, objects, members, ClaimsError, "claims")
        return VerifiedJWS(header, claims)


def parse_header(raw: "bytes | bytearray") -> Dict[str, Any]:
    """A JOSE header read strictly, whose alg must be exactly HS256."""
    header = loads_object(bytes(raw), HeaderError, "JOSE header")
    check_alg(header, "HS256")
    return header


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


def _known_headers() -> "tuple[Dict[str, Any], ...]":
    """The headers of the segments the C core recognises without parsing, by
    index, read from the C table (so the two cannot disagree)."""
    out = []
    for seg in _hs256.known_header_segments():
        rc, raw = _hs256.b64_decode(seg, url=True)
        header = parse_header(raw) if rc == 0 else {}
        if not header:
            raise RuntimeError("the C table of known JOSE headers is corrupt")
        out.append(header)
    return tuple(out)


#: The header of known segment i (copied for each caller: dicts are mutable).
KNOWN_HEADERS = _known_headers()
