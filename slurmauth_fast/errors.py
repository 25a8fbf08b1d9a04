"""One exception hierarchy for every failure, mirroring Slurm's error codes.

Every exception carries ``slurm_errno``: the Slurm error number a Slurm daemon
would report for the same failure (``ESLURM_AUTH_CRED_INVALID`` = 6000 for a
credential that does not verify, ``ESLURM_AUTH_UNPACK`` = 6007 for bytes that do
not unpack, and so on), so a shim can answer a client the way slurmctld would.

C status codes (``csrc/sa_status.h``) map one to one onto exception classes via
:func:`raise_for_status`; messages never contain key material or token bytes
beyond what the caller already has.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple, Type

# Slurm error numbers (slurm/slurm_errno.h).
SLURM_ERROR = -1
SLURM_PROTOCOL_VERSION_ERROR = 1005
ESLURM_PROTOCOL_INCOMPLETE_PACKET = 5003
ESLURM_AUTH_CRED_INVALID = 6000
ESLURM_AUTH_FOPEN_ERROR = 6001
ESLURM_AUTH_NET_ERROR = 6002
ESLURM_AUTH_UNABLE_TO_SIGN = 6003
ESLURM_AUTH_BADARG = 6004
ESLURM_AUTH_UNPACK = 6007
ESLURM_AUTH_SKIP = 6008
ESLURM_AUTH_UNABLE_TO_GENERATE_TOKEN = 6009


class SlurmAuthError(Exception):
    """Base of every slurmauth_fast error."""

    slurm_errno: int = SLURM_ERROR

    def __init__(self, message: str = "", *, status: Optional[int] = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        #: The C status code behind this error, when it came from the C core.
        self.status = status


# --- credentials that do not verify (ESLURM_AUTH_CRED_INVALID) -------------

class CredentialError(SlurmAuthError):
    """The credential is invalid."""

    slurm_errno = ESLURM_AUTH_CRED_INVALID


class TokenFormatError(CredentialError):
    """The token is not a well-formed compact JWS."""


class TokenTooLargeError(TokenFormatError):
    """The token is longer than the configured limit (refused before any hashing)."""


class SegmentError(TokenFormatError):
    """The token does not have exactly three non-empty '.'-separated segments."""


class Base64Error(TokenFormatError):
    """A segment is not strict base64url (or the payload not strict base64)."""


class NonCanonicalBase64Error(Base64Error):
    """A base64 segment has non-zero trailing bits (non-canonical encoding)."""


class HeaderError(TokenFormatError):
    """The JOSE header is not a JSON object of the expected shape."""


class ClaimsError(TokenFormatError):
    """The claims are not a JSON object, or a required claim is missing or mistyped."""


class SignatureError(CredentialError):
    """The HMAC tag does not match: wrong key or altered token."""


class SignatureLengthError(SignatureError):
    """The signature segment is not a 32-byte HS256 tag."""


class AlgorithmError(CredentialError):
    """The header's alg is not exactly the one this verifier accepts."""


class ExpiredError(CredentialError):
    """The credential (or the key that signed it) has expired."""


class KeyIdError(CredentialError):
    """The header names a key id that is not loaded, or names it wrongly."""


class AudienceError(CredentialError):
    """The credential is not for this verifier (ruid, context, user)."""


# --- auth/slurm credentials and keys (issue #3) ---------------------------

class IdentityError(ClaimsError):
    """The "id" identity object of a credential is malformed (names the field)."""


class ContextError(AudienceError):
    """The credential's context is not one this verifier accepts."""


class PayloadError(ClaimsError):
    """The credential's payload claim is not strict padded standard base64."""


class KeyExpiredError(ExpiredError):
    """The slurm.jwks key that signed the credential has expired."""

# --- end auth/slurm ---------------------------------------------------------


# --- keys -----------------------------------------------------------------

class KeyFileError(SlurmAuthError):
    """A key file is missing, unreadable, unsafe or malformed."""

    slurm_errno = ESLURM_AUTH_FOPEN_ERROR


class KeyPermissionError(KeyFileError):
    """A key file is accessible by users other than its owner and group."""


class JWKSError(KeyFileError):
    """A JWKS file breaks one of Slurm's rules."""


class SigningError(SlurmAuthError):
    """A credential could not be created."""

    slurm_errno = ESLURM_AUTH_UNABLE_TO_SIGN


# --- wire -----------------------------------------------------------------

class UnpackError(SlurmAuthError):
    """Bytes do not unpack in Slurm's pack format."""

    slurm_errno = ESLURM_AUTH_UNPACK


class BadArgumentError(SlurmAuthError, ValueError):
    """An argument to a slurmauth_fast function is invalid."""

    slurm_errno = ESLURM_AUTH_BADARG


class NativeBufferError(SlurmAuthError):
    """Internal: an output buffer was too small (a bug, never user input)."""


# --- auth/jwt (issue #7) ---------------------------------------------------

ESLURM_USER_ID_MISSING = 2010


class UserClaimError(ClaimsError):
    """The token names no user: none of "sun", "username" or the configured
    userclaimfield is a non-empty string."""


class UnknownUserError(AudienceError):
    """The token's user cannot be resolved to a uid/gid (not in the local user
    database, or no client ids in the token under use_jwt_client_ids_only)."""

    slurm_errno = ESLURM_USER_ID_MISSING


class AlternateUserError(AudienceError):
    """The packed username differs from the token's user, and the token's user is
    neither root nor SlurmUser (only they may act for others, as slurmrestd does)."""


class TokenCreationError(SigningError):
    """A token cannot be created (``scontrol token`` refuses the request)."""

    slurm_errno = ESLURM_AUTH_UNABLE_TO_GENERATE_TOKEN


class LifespanError(TokenCreationError, ValueError):
    """The requested token lifespan is not in 1 .. 4294967293 seconds."""


class TokenCreationDeniedError(TokenCreationError):
    """The caller may not create this token: only root or SlurmUser may create
    tokens for another user, or when AuthAltParameters has disable_token_creation."""

# --- end auth/jwt -----------------------------------------------------------


# C status code -> (exception class, message). Codes from csrc/sa_status.h.
_STATUS: Dict[int, Tuple[Type[SlurmAuthError], str]] = {
    1: (TokenTooLargeError, "token exceeds the size limit"),
    2: (SegmentError, "token must have exactly three '.'-separated segments"),
    3: (SegmentError, "token header or payload segment is empty"),
    4: (Base64Error, "invalid base64: character outside the alphabet or bad length/padding"),
    5: (NonCanonicalBase64Error, "non-canonical base64: trailing bits are not zero"),
    6: (SignatureLengthError, "signature is not a 32-byte HS256 tag"),
    7: (SignatureError, "signature mismatch"),
    8: (NativeBufferError, "output buffer too small"),
    9: (BadArgumentError, "invalid argument"),
    10: (BadArgumentError, "HMAC key is empty"),
}


def register_status(code: int, exc: Type[SlurmAuthError], message: str) -> None:
    """Register the exception for a C status code (used by each module for its range)."""
    if code in _STATUS and _STATUS[code] != (exc, message):
        raise RuntimeError(f"C status {code} registered twice")
    _STATUS[code] = (exc, message)


def error_for_status(status: int, context: str = "") -> SlurmAuthError:
    """The exception instance for a non-zero C status code."""
    exc, msg = _STATUS.get(status, (SlurmAuthError, f"unknown C status {status}"))
    return exc(f"{context}: {msg}" if context else msg, status=status)


def raise_for_status(status: int, context: str = "") -> None:
    """Raise the exception for a non-zero C status code; return on SA_OK."""
    if status:
        raise error_for_status(status, context)
