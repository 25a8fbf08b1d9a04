"""Reading a token without verifying it, for tooling (never for a decision):
:func:`get_unverified_header` and :func:`decode_unverified`."""
from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Dict, List, Tuple

from .exceptions import Base64Error, HeaderError, SegmentError
from .jws import TokenLike, as_token_bytes
from .jsonutil import loads_object


def get_unverified_header(token: TokenLike) -> Dict[str, Any]:
    """The JOSE header of a compact JWS, strictly parsed, its signature NOT
    checked (as PyJWT's ``get_unverified_header``)."""
    tok = as_token_bytes(token)
    if tok.count(b".") != 2:
        raise SegmentError("token must have exactly three '.'-separated segments")
    seg = tok.split(b".", 1)[0]
    try:
        raw = base64.urlsafe_b64decode(seg + b"=" * (-len(seg) % 4))
    except (binascii.Error, ValueError):
        raise Base64Error("header is not base64url") from None
    return loads_object(raw, HeaderError, "JOSE header")


def decode_unverified(token: str) -> Tuple[Dict[str, Any], Dict[str, Any], List[str]]:
    """Header and claims of a compact JWS without any check. Segments that do
    not decode are reported in the returned notes instead of raising."""
    notes: List[str] = []
    parts = token.split(".")
    if len(parts) != 3:
        notes.append(f"token has {len(parts)} '.'-separated segments, not 3")
    out: List[Dict[str, Any]] = []
    for name, seg in zip(("header", "claims"), parts[:2] + [""] * (2 - len(parts[:2]))):
        try:
            raw = base64.urlsafe_b64decode(seg + "=" * (-len(seg) % 4))
        except (binascii.Error, ValueError):
            notes.append(f"{name} is not base64url")
            out.append({})
            continue
        try:
            obj = json.loads(raw)
        except ValueError:  # includes UnicodeDecodeError
            obj = None
        if not isinstance(obj, dict):
            notes.append(f"{name} is not a JSON object: {raw[:80]!r}")
            obj = {}
        out.append(obj)
    return out[0], out[1], notes


__all__ = ["decode_unverified", "get_unverified_header"]
