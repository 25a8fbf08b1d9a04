"""The one table from C status codes (``csrc/sa_status.h`` and each header's
range) to exception classes and messages.

It is complete when this module is imported: every ``SA_E_*`` and ``SC_E_*``
constant the C core exports has its row (checked below), whichever modules
the caller has imported. :func:`error_for_status` builds the exception for a
status; :func:`claim_error` adds the claim the C scanner names
(``sc_result.err_claim``) as ``.claim`` and in the message.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Type

from ..exceptions import (
    AddressError, AlgorithmError, AudienceError, AuthSectionError, BadArgumentError, Base64Error,
    BlockedNoneHashError, BodyHashLengthError, BodyHashMismatchError, BodyHashMsgTypeError,
    BodyTrailingBytesError, BodyTruncatedError, ClaimsError, ContextError, CredentialError,
    EmbeddedNulError, ExpiredError, FramePrefixError, FrameTooLargeError, FrameTrailingBytesError,
    FrameTruncatedError, HeaderError, HeaderTruncatedError, IdentityError, InvalidKeyError,
    KeyExpiredError,
    KeyIdError, MissingBodyHashError, MissingCredentialError, NativeBufferError,
    NonCanonicalBase64Error, PackLimitError, PayloadError, ProtocolVersionError, SegmentError,
    ServeError, SignatureError, SignatureLengthError, SlurmAuthError, SlurmdbdFramingError,
    StringNulError, UpstreamError,
    TokenTooLargeError, TruncatedError, UserClaimError, UnknownAuthPluginError, UnknownHashTypeError,
    UnsupportedAuthPluginError, UnsupportedRetListError,
)
from ._ffi import lib

#: status -> (exception class, message)
STATUS: Dict[int, Tuple[Type[SlurmAuthError], str]] = {
    # 1-19: foundation (base64, JWS, HMAC)
    lib.SA_E_TOO_LARGE: (TokenTooLargeError, "token exceeds the size limit"),
    lib.SA_E_SEGMENTS: (SegmentError, "token must have exactly three '.'-separated segments"),
    lib.SA_E_EMPTY_SEGMENT: (SegmentError, "token header or payload segment is empty"),
    lib.SA_E_BASE64: (Base64Error,
                      "invalid base64: character outside the alphabet or bad length/padding"),
    lib.SA_E_BASE64_NONCANON: (NonCanonicalBase64Error,
                               "non-canonical base64: trailing bits are not zero"),
    lib.SA_E_SIG_LENGTH: (SignatureLengthError, "signature is not a 32-byte HS256 tag"),
    lib.SA_E_BAD_SIGNATURE: (SignatureError, "signature mismatch"),
    lib.SA_E_BUFFER: (NativeBufferError, "output buffer too small"),
    lib.SA_E_ARG: (BadArgumentError, "invalid argument"),
    lib.SA_E_KEY_EMPTY: (InvalidKeyError, "HMAC key is empty"),
    lib.SA_E_KEY_PUBLIC: (InvalidKeyError, "the key is a public key or certificate, not an HMAC secret"),
    # 20-59: auth/slurm credentials and claims
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
    lib.SC_E_PAYLOAD_EMPTY: (PayloadError, "payload is an empty string (Slurm's base64 decode refuses it)"),
    lib.SC_E_BATCH_SPLIT: (BadArgumentError, "separated batch does not hold exactly n tokens"),
    # 120-139: auth/jwt (csrc/jwtverify.h)
    lib.SA_E_JWT_ALG_TYPE: (AlgorithmError, "JOSE header alg is not a string"),
    lib.SA_E_JWT_NO_HS256_KEY: (AlgorithmError, "HS256 token, but no HS256 key is loaded"),
    lib.SA_E_JWT_NO_JWKS: (AlgorithmError, "RS256 token, but no jwks is loaded"),
    lib.SA_E_JWT_KID_MISSING: (KeyIdError, "RS256 token has no kid"),
    lib.SA_E_JWT_NO_USER: (UserClaimError, "the token names no user"),
    lib.SA_E_JWT_USER_EMPTY: (UserClaimError, "the user claim is not a valid user name"),
    lib.SA_E_JWT_TOO_MANY: (ClaimsError, "more claims than the verifier reads"),
    lib.SA_E_JWT_INT64: (ClaimsError, "an integer claim is beyond int64 (jansson refuses it)"),
    # 60-64: the pack format
    lib.SA_E_PACK_SHORT: (TruncatedError, "buffer ends before the field"),
    lib.SA_E_PACK_MEM_LIMIT: (PackLimitError, "packmem length above 1 GiB"),
    lib.SA_E_PACK_STR_NUL: (StringNulError, "packstr does not end with NUL"),
    lib.SA_E_PACK_STR_EMBEDDED: (EmbeddedNulError, "packstr contains an embedded NUL"),
    lib.SA_E_PACK_FULL: (NativeBufferError, "pack buffer full"),
    # 65-79: RPC frames
    lib.SA_E_RPC_PREFIX_SHORT: (FramePrefixError, "fewer than 4 bytes: no length prefix"),
    lib.SA_E_RPC_TOO_LARGE: (FrameTooLargeError, "frame length above the cap"),
    lib.SA_E_RPC_TRUNCATED: (FrameTruncatedError, "frame shorter than its length prefix says"),
    lib.SA_E_RPC_TRAILING: (FrameTrailingBytesError, "bytes beyond the length prefix"),
    lib.SA_E_RPC_VERSION: (ProtocolVersionError, "protocol version not accepted"),
    lib.SA_E_RPC_HEADER_SHORT: (HeaderTruncatedError, "header cut short"),
    lib.SA_E_RPC_DBD_FLAG: (SlurmdbdFramingError,
                            "SLURMDBD_CONNECTION flag disagrees with the framing"),
    lib.SA_E_RPC_DBD_MSG_TYPE: (SlurmdbdFramingError,
                                "slurmdbd msg_type prefix differs from the header's"),
    lib.SA_E_RPC_RET_LIST: (UnsupportedRetListError,
                            "ret_cnt > 0: per-node reply lists are not supported"),
    lib.SA_E_RPC_ADDR6_LEN: (AddressError, "AF_INET6 orig_addr is not 16 bytes"),
    lib.SA_E_RPC_AUTH_SHORT: (AuthSectionError, "auth section cut short"),
    lib.SA_E_RPC_AUTH_PLUGIN: (UnknownAuthPluginError, "unknown auth plugin id"),
    lib.SA_E_RPC_BODY_SHORT: (BodyTruncatedError, "body shorter than body_length"),
    lib.SA_E_RPC_BODY_TRAILING: (BodyTrailingBytesError, "bytes after body_length"),
    lib.SA_E_RPC_OPTIONS: (BadArgumentError, "invalid frame options"),
    # 80-85: the body hash
    lib.SA_E_HASH_MISSING: (MissingBodyHashError,
                            "credential carries no body hash (block_null_hash)"),
    lib.SA_E_HASH_NONE_BLOCKED: (BlockedNoneHashError,
                                 "credential carries the NONE body hash (block_zero_hash)"),
    lib.SA_E_HASH_TYPE: (UnknownHashTypeError, "unknown body hash type"),
    lib.SA_E_HASH_LENGTH: (BodyHashLengthError, "body hash payload has the wrong length"),
    lib.SA_E_HASH_MSG_TYPE: (BodyHashMsgTypeError, "NONE body hash names another message type"),
    lib.SA_E_HASH_MISMATCH: (BodyHashMismatchError,
                             "body hash mismatch: body or message type altered"),
    # 86-88: the fused frame verifier's auth section
    lib.SA_E_FRAME_NO_AUTH: (MissingCredentialError, "RPC has no auth section (NO_AUTH_CRED)"),
    lib.SA_E_FRAME_NULL_CRED: (MissingCredentialError,
                               "auth/slurm section carries a NULL credential"),
    lib.SA_E_FRAME_PLUGIN: (UnsupportedAuthPluginError, "auth plugin is not auth/slurm"),
    # the serving core
    lib.SA_E_SERVE_SYS: (ServeError, "a system call failed"),
    lib.SA_E_SERVE_CONN: (ServeError, "no such connection (closed, or a stale id)"),
    lib.SA_E_SERVE_STATE: (ServeError, "the connection is not waiting for an answer"),
    lib.SA_E_SERVE_NOMEM: (ServeError, "out of memory or over the buffered-bytes cap"),
    lib.SA_E_SERVE_UP_CLOSED: (UpstreamError, "upstream closed before its whole reply"),
    lib.SA_E_SERVE_UP_TIMEOUT: (UpstreamError, "upstream did not connect or reply in time"),
    lib.SA_E_SERVE_UP_FRAME: (UpstreamError, "upstream reply larger than the frame cap"),
    lib.SA_E_SERVE_LISTENERS: (ServeError, "too many listeners"),
    lib.SA_E_SERVE_HEAD_LONG: (ServeError, "header and auth section longer than the cap"),
}

_missing = sorted(name for name in dir(lib)
                  if name.startswith(("SA_E_", "SC_E_")) and getattr(lib, name) not in STATUS)
if _missing:  # pragma: no cover - caught by the test suite when a header grows
    raise ImportError(f"C statuses without an exception: {', '.join(_missing)}")

#: SC_CL_* index -> claim name (sc_result.err_claim).
CLAIM_NAMES: Tuple[str, ...] = ("iat", "exp", "ver", "ruid", "uid", "gid", "context", "cluster",
                                "host", "payload", "id", "sbcast", "net")
assert all(getattr(lib, f"SC_CL_{n.upper()}") == i for i, n in enumerate(CLAIM_NAMES))
CLAIM_ID = lib.SC_CL_ID


def error_for_status(status: int, context: str = "") -> SlurmAuthError:
    """The exception instance for a non-zero C status code."""
    exc, msg = STATUS.get(status, (SlurmAuthError, f"unknown C status {status}"))
    return exc(f"{context}: {msg}" if context else msg, status=status)


def raise_for_status(status: int, context: str = "") -> None:
    """Raise the exception for a non-zero C status code; return on SA_OK."""
    if status:
        raise error_for_status(status, context)


#: Statuses that are about one claim whatever the scanner reports.
STATUS_CLAIM: Dict[int, str] = {
    lib.SC_E_EXPIRED: "exp", lib.SC_E_EXP_MISSING: "exp", lib.SC_E_RUID_MISSING: "ruid",
    lib.SC_E_RUID: "ruid", lib.SC_E_IAT_MISSING: "iat", lib.SC_E_UID_MISSING: "uid",
    lib.SC_E_GID_MISSING: "gid", lib.SC_E_HOST_MISSING: "host",
    lib.SC_E_CONTEXT_MISSING: "context", lib.SC_E_CONTEXT: "context", lib.SC_E_PAYLOAD: "payload",
}


def claim_error(status: int, claim: int) -> SlurmAuthError:
    """The exception for a credential the C verifier refused with ``status``,
    naming the claim at fault (``claim``: an SC_CL_* index, or -1; statuses
    about one claim name it as ``.claim`` either way)."""
    if claim < 0:
        err = error_for_status(status)
        err.claim = STATUS_CLAIM.get(status)
        return err
    exc, msg = STATUS.get(status, (SlurmAuthError, f"unknown C status {status}"))
    name = CLAIM_NAMES[claim]
    if claim == CLAIM_ID and issubclass(exc, ClaimsError) and not issubclass(exc, IdentityError):
        exc = IdentityError
    return exc(f"claim {name!r}: {msg}", status=status, claim=name)


def credential_failure(status: int, claim: int) -> CredentialError:
    """:func:`claim_error` for a refused credential; any status that is not a
    credential's (buffer sizing: a bug, never user input) is raised."""
    err = claim_error(status, claim)
    if not isinstance(err, CredentialError):
        raise err
    return err


def status_name(status: int) -> Optional[str]:
    """The C constant's name for a status (``"SA_E_BAD_SIGNATURE"``), or None."""
    for name in dir(lib):
        if name.startswith(("SA_E_", "SC_E_")) and getattr(lib, name) == status:
            return name
    return None


__all__ = ["CLAIM_NAMES", "STATUS", "claim_error", "credential_failure", "error_for_status",
           "raise_for_status", "status_name"]
