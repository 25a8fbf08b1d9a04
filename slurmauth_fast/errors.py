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
    """The credential's payload claim does not decode: not strict padded
    standard base64, or empty (Slurm's base64 decoder refuses "")."""


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


class KeyFileTypeError(KeyFileError):
    """A key path names no regular file (a FIFO, device, socket or directory)."""


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


# --- wire: pack format, RPC frames, body-hash binding (issue #4) -----------

class PackError(UnpackError):
    """Bytes break one of Slurm's pack rules."""


class TruncatedError(PackError):
    """The buffer ends before the field does."""


class PackLimitError(PackError):
    """A packmem/packstr length is above Slurm's 1 GiB limit."""


class StringNulError(PackError):
    """A packstr's last byte is not NUL."""


class EmbeddedNulError(PackError):
    """A packstr contains a NUL before its end (C would silently truncate it)."""


class FrameError(UnpackError):
    """An RPC frame is malformed (Slurm answers ESLURM_PROTOCOL_INCOMPLETE_PACKET)."""

    slurm_errno = ESLURM_PROTOCOL_INCOMPLETE_PACKET


class FramePrefixError(FrameError):
    """Fewer than 4 bytes: the uint32 length prefix is missing."""


class FrameTooLargeError(FrameError):
    """The frame's length is above the configured cap (refused before any parsing)."""


class FrameTruncatedError(FrameError):
    """The length prefix announces more bytes than are present."""


class FrameTrailingBytesError(FrameError):
    """Bytes are present beyond the length announced by the prefix."""


class ProtocolVersionError(FrameError):
    """The header's protocol version is outside the accepted range."""

    slurm_errno = SLURM_PROTOCOL_VERSION_ERROR


class HeaderTruncatedError(FrameError):
    """The header (with its forward and orig_addr parts) is cut short."""


class SlurmdbdFramingError(FrameError):
    """The SLURMDBD_CONNECTION flag or msg_type prefix disagrees with the framing."""


class UnsupportedRetListError(FrameError):
    """ret_cnt > 0: frames carrying per-node reply lists are not supported."""


class AddressError(FrameError):
    """orig_addr is malformed (an AF_INET6 address that is not 16 bytes)."""


class AuthSectionError(FrameError):
    """The auth section is cut short or names an unknown plugin."""


class UnknownAuthPluginError(AuthSectionError):
    """The auth section names a plugin id other than 100-103."""


class BodyLengthError(FrameError):
    """body_length does not match the bytes after the auth section."""


class BodyTruncatedError(BodyLengthError):
    """Fewer bytes follow the auth section than body_length says."""


class BodyTrailingBytesError(BodyLengthError):
    """More bytes follow the auth section than body_length says."""


class BodyHashError(CredentialError):
    """The credential does not bind this message body and type."""


class MissingBodyHashError(BodyHashError):
    """The credential carries no body hash and block_null_hash is set."""


class BlockedNoneHashError(BodyHashError):
    """The credential carries the NONE hash form and block_zero_hash is set."""


class UnknownHashTypeError(BodyHashError):
    """The payload's type byte names no supported hash (1 NONE, 2 K12, 4 SHA3)."""


class BodyHashLengthError(BodyHashError):
    """The payload's length is wrong for its hash type."""


class BodyHashMsgTypeError(BodyHashError):
    """A NONE payload names a different msg_type than the header."""


class BodyHashMismatchError(BodyHashError):
    """The digest differs: the body or msg_type was altered (or belongs to another RPC)."""


class UnsupportedAuthPluginError(CredentialError):
    """The frame's auth plugin is not one this verifier handles."""


class MissingCredentialError(CredentialError):
    """The frame carries no credential where one is required."""

# --- end wire ---------------------------------------------------------------


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


# --- SACK kiosk (slurmauth_fast.sack) ---------------------------------------

class SackError(SlurmAuthError):
    """A request to a SACK kiosk failed."""

    slurm_errno = ESLURM_AUTH_NET_ERROR


class SackConnectError(SackError):
    """No SACK kiosk socket accepted the connection."""


class SackTimeoutError(SackError):
    """The SACK kiosk did not answer within the timeout."""


class SackProtocolError(SackError):
    """The SACK kiosk's reply is malformed."""

    slurm_errno = ESLURM_AUTH_UNPACK


class SackRefusedError(SackError):
    """The SACK kiosk closed the connection without a reply: it refused the request."""


class SackCreateRefusedError(SackRefusedError):
    """The SACK kiosk refused to create a credential."""

    slurm_errno = ESLURM_AUTH_UNABLE_TO_SIGN


class SackVerifyRefusedError(SackRefusedError, CredentialError):
    """The SACK kiosk refused the credential: it did not verify for this uid."""

    slurm_errno = ESLURM_AUTH_CRED_INVALID


class SackServerError(SackError):
    """A SACK kiosk cannot serve: its socket path is unusable or already served."""


# --- end SACK -----------------------------------------------------------------


# --- munge ----------------------------------------------------------------
# auth/munge (plugin 101): failures reported by libmunge/munged. Each
# munge_err_t code (munge.h) has its own class; the code itself is kept on the
# exception as ``munge_errno``. Slurm reports every decode failure as
# ESLURM_AUTH_CRED_INVALID (its plugin retries EMUNGE_SOCKET, then gives up
# with 6000 too); here a munged that cannot be reached is reported as the
# network failure it is (ESLURM_AUTH_NET_ERROR), so callers can tell an outage
# (worth retrying) from a bad credential.

class MungeError(CredentialError):
    """MUNGE could not encode or decode the credential."""

    #: The munge_err_t code this class stands for (None: not from libmunge).
    code: Optional[int] = None

    def __init__(self, message: str = "", *, munge_errno: Optional[int] = None,
                 credential: Optional[object] = None) -> None:
        super().__init__(message)
        #: The munge_err_t number libmunge returned (EMUNGE_*), or None.
        self.munge_errno = munge_errno if munge_errno is not None else self.code
        #: For expired, rewound and replayed credentials munged still returns
        #: the credential's contents (munge_decode(3)); they are kept here for
        #: diagnostics (a slurmauth_fast.munge.MungeCredential). Never trust them.
        self.credential = credential


class MungeUnavailableError(MungeError):
    """libmunge (libmunge.so.2, Debian package libmunge2) cannot be loaded."""

    slurm_errno = SLURM_ERROR


class MungeInternalError(MungeError):
    """EMUNGE_SNAFU: internal error in libmunge or munged."""

    code = 1


class MungeBadArgumentError(MungeError, BadArgumentError):
    """EMUNGE_BAD_ARG: an invalid argument (option value, payload, context)."""

    code = 2
    slurm_errno = ESLURM_AUTH_BADARG


class MungeBadLengthError(MungeError):
    """EMUNGE_BAD_LENGTH: the message exceeds munged's maximum length."""

    code = 3


class MungeOverflowError(MungeError):
    """EMUNGE_OVERFLOW: a buffer overflow was detected."""

    code = 4


class MungeNoMemoryError(MungeError):
    """EMUNGE_NO_MEMORY: out of memory."""

    code = 5


class MungeSocketError(MungeError):
    """EMUNGE_SOCKET: munged cannot be reached over its socket (down, refused, timed out)."""

    code = 6
    slurm_errno = ESLURM_AUTH_NET_ERROR


class MungeTimeoutError(MungeSocketError):
    """EMUNGE_TIMEOUT: socket timeout talking to munged."""

    code = 7


class MungeBadCredentialError(MungeError):
    """EMUNGE_BAD_CRED: not a MUNGE credential (bad format)."""

    code = 8


class MungeBadVersionError(MungeError):
    """EMUNGE_BAD_VERSION: the credential has an unsupported version."""

    code = 9


class MungeBadCipherError(MungeError):
    """EMUNGE_BAD_CIPHER: invalid or unsupported cipher type."""

    code = 10


class MungeBadMacError(MungeError):
    """EMUNGE_BAD_MAC: invalid or unsupported MAC type."""

    code = 11


class MungeBadZipError(MungeError):
    """EMUNGE_BAD_ZIP: invalid or unsupported compression type."""

    code = 12


class MungeBadRealmError(MungeError):
    """EMUNGE_BAD_REALM: unrecognized security realm."""

    code = 13


class MungeCredentialInvalidError(MungeError):
    """EMUNGE_CRED_INVALID: the credential does not verify (wrong key or altered)."""

    code = 14


class MungeExpiredError(MungeError, ExpiredError):
    """EMUNGE_CRED_EXPIRED: the credential's time-to-live has passed."""

    code = 15


class MungeRewoundError(MungeError):
    """EMUNGE_CRED_REWOUND: the credential was encoded in the future (clock skew)."""

    code = 16


class MungeReplayedError(MungeError):
    """EMUNGE_CRED_REPLAYED: the credential has already been decoded."""

    code = 17


class MungeUnauthorizedError(MungeError, AudienceError):
    """EMUNGE_CRED_UNAUTHORIZED: the credential is restricted to another uid/gid."""

    code = 18


class MungeRestrictionNotEnforcedError(MungeError):
    """munged let this process decode a credential restricted to another uid
    (MUNGE built to let root decode anything); Slurm refuses to run so."""


_MUNGE_ERRORS: Dict[int, Type[MungeError]] = {
    c.code: c for c in (
        MungeInternalError, MungeBadArgumentError, MungeBadLengthError, MungeOverflowError,
        MungeNoMemoryError, MungeSocketError, MungeTimeoutError, MungeBadCredentialError,
        MungeBadVersionError, MungeBadCipherError, MungeBadMacError, MungeBadZipError,
        MungeBadRealmError, MungeCredentialInvalidError, MungeExpiredError, MungeRewoundError,
        MungeReplayedError, MungeUnauthorizedError,
    ) if c.code is not None
}


def munge_error_class(munge_errno: int) -> Type[MungeError]:
    """The exception class for a munge_err_t code (MungeError for an unknown code)."""
    return _MUNGE_ERRORS.get(munge_errno, MungeError)


# --- end munge --------------------------------------------------------------


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
