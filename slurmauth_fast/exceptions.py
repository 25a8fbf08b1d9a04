"""The exception tree: one class per failure, each carrying ``slurm_errno``,
the Slurm error number a Slurm daemon would report for the same failure
(``ESLURM_AUTH_CRED_INVALID`` = 6000 for a credential that does not verify,
``ESLURM_AUTH_UNPACK`` = 6007 for bytes that do not unpack, and so on), so a
shim can answer a client the way slurmctld would.

Everything derives from :class:`SlurmAuthError`. Token failures also carry
PyJWT's names (:func:`slurmauth_fast.decode` raises them): every refusal of
a token by decode() is an :class:`InvalidTokenError`, a malformed token or a
bad signature (whichever verifier found it) a :class:`DecodeError`, and ``InvalidSignatureError`` /
``InvalidAlgorithmError`` are :class:`SignatureError` / :class:`AlgorithmError`
under PyJWT's name. Errors about a claim carry
``.claim`` (its name, as PyJWT's do); wrong argument values are
``ValueError``s (:class:`BadArgumentError`), wrong argument types
``TypeError``s (:class:`BadArgumentTypeError`). The C status codes map onto
these classes in one table, :mod:`slurmauth_fast._bindings.status`.
Messages never contain key material or token bytes beyond what the caller
already has.
"""
from __future__ import annotations

from typing import Dict, Optional, Type

from .codes import (  # noqa: F401 (re-exported by errors)
    SLURM_ERROR, SLURM_PROTOCOL_VERSION_ERROR, ESLURM_PROTOCOL_INCOMPLETE_PACKET,
    ESLURM_AUTH_CRED_INVALID, ESLURM_AUTH_FOPEN_ERROR, ESLURM_AUTH_NET_ERROR,
    ESLURM_AUTH_UNABLE_TO_SIGN, ESLURM_AUTH_BADARG, ESLURM_AUTH_UNPACK, ESLURM_AUTH_SKIP,
    ESLURM_AUTH_UNABLE_TO_GENERATE_TOKEN, ESLURM_USER_ID_MISSING, EMUNGE_SNAFU, EMUNGE_BAD_ARG,
    EMUNGE_BAD_LENGTH, EMUNGE_OVERFLOW, EMUNGE_NO_MEMORY, EMUNGE_SOCKET, EMUNGE_TIMEOUT,
    EMUNGE_BAD_CRED, EMUNGE_BAD_VERSION, EMUNGE_BAD_CIPHER, EMUNGE_BAD_MAC, EMUNGE_BAD_ZIP,
    EMUNGE_BAD_REALM, EMUNGE_CRED_INVALID, EMUNGE_CRED_EXPIRED, EMUNGE_CRED_REWOUND,
    EMUNGE_CRED_REPLAYED, EMUNGE_CRED_UNAUTHORIZED,
)


class SlurmAuthError(Exception):
    """Base of every slurmauth_fast error."""

    slurm_errno: int = SLURM_ERROR

    def __init__(self, message: str = "", *, status: Optional[int] = None,
                 claim: Optional[str] = None) -> None:
        super().__init__(message or self.__class__.__doc__ or self.__class__.__name__)
        #: The C status code behind this error, when it came from the C core.
        self.status = status
        #: The claim at fault ("exp", "uid", ...), when the error is about one.
        self.claim = claim


# --- credentials that do not verify (ESLURM_AUTH_CRED_INVALID) -------------

class CredentialError(SlurmAuthError):
    """The credential is invalid."""

    slurm_errno = ESLURM_AUTH_CRED_INVALID


class InvalidTokenError(CredentialError):
    """The token does not verify (PyJWT's ``InvalidTokenError``: the base of every
    failure of :func:`slurmauth_fast.decode`)."""


class DecodeError(InvalidTokenError):
    """The token cannot be decoded: malformed, or its signature does not verify
    (PyJWT's ``DecodeError``)."""


class TokenFormatError(DecodeError):
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


class SignatureError(DecodeError):
    """The HMAC tag does not match: wrong key or altered token."""


class SignatureLengthError(SignatureError):
    """The signature segment is not a 32-byte HS256 tag."""


class AlgorithmError(InvalidTokenError):
    """The header's alg is not exactly the one this verifier accepts."""


class ExpiredError(CredentialError):
    """The credential (or the key that signed it) has expired."""


class KeyIdError(CredentialError):
    """The header names a key id that is not loaded, or names it wrongly."""


class AudienceError(CredentialError):
    """The credential is not for this verifier (ruid, context, user)."""


# --- PyJWT's names, for decode() ---------------------------------------------
# The same meaning under PyJWT's name: an alias of the class already raised for it.
InvalidSignatureError = SignatureError
InvalidAlgorithmError = AlgorithmError


class ExpiredSignatureError(ExpiredError, InvalidTokenError):
    """The token's exp claim is in the past (beyond the leeway)."""


class ImmatureSignatureError(InvalidTokenError):
    """The token's nbf or iat claim is in the future (beyond the leeway)."""


class InvalidIssuedAtError(InvalidTokenError):
    """The token's iat claim is not a number."""


class InvalidAudienceError(AudienceError, InvalidTokenError):
    """The token's aud claim does not name the expected audience, or is malformed."""


class InvalidIssuerError(InvalidTokenError):
    """The token's iss claim is not the expected issuer, or not a string."""


class InvalidSubjectError(InvalidTokenError):
    """The token's sub claim is not a string, or not the expected subject."""


class InvalidJTIError(InvalidTokenError):
    """The token's jti claim is not a string."""


class MissingRequiredClaimError(InvalidTokenError):
    """A claim that must be present is missing (``.claim`` names it)."""


# --- end PyJWT's names --------------------------------------------------------


# --- auth/slurm credentials and keys ---------------------------------------

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


class BadArgumentTypeError(BadArgumentError, TypeError):
    """An argument to a slurmauth_fast function has the wrong type."""


class InvalidKeyError(BadArgumentError):
    """The key given to decode() is empty or looks like a public key (PEM or
    OpenSSH), which must never be used as an HMAC secret (PyJWT's ``InvalidKeyError``)."""


class NativeBufferError(SlurmAuthError):
    """Internal: an output buffer was too small (a bug, never user input)."""


# --- wire: pack format, RPC frames, body-hash binding ----------------------

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


# --- auth/jwt --------------------------------------------------------------



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

    code = EMUNGE_SNAFU


class MungeBadArgumentError(MungeError, BadArgumentError):
    """EMUNGE_BAD_ARG: an invalid argument (option value, payload, context)."""

    code = EMUNGE_BAD_ARG
    slurm_errno = ESLURM_AUTH_BADARG


class MungeBadLengthError(MungeError):
    """EMUNGE_BAD_LENGTH: the message exceeds munged's maximum length."""

    code = EMUNGE_BAD_LENGTH


class MungeOverflowError(MungeError):
    """EMUNGE_OVERFLOW: a buffer overflow was detected."""

    code = EMUNGE_OVERFLOW


class MungeNoMemoryError(MungeError):
    """EMUNGE_NO_MEMORY: out of memory."""

    code = EMUNGE_NO_MEMORY


class MungeSocketError(MungeError):
    """EMUNGE_SOCKET: munged cannot be reached over its socket (down, refused, timed out)."""

    code = EMUNGE_SOCKET
    slurm_errno = ESLURM_AUTH_NET_ERROR


class MungeTimeoutError(MungeSocketError):
    """EMUNGE_TIMEOUT: socket timeout talking to munged."""

    code = EMUNGE_TIMEOUT


class MungeBadCredentialError(MungeError):
    """EMUNGE_BAD_CRED: not a MUNGE credential (bad format)."""

    code = EMUNGE_BAD_CRED


class MungeBadVersionError(MungeError):
    """EMUNGE_BAD_VERSION: the credential has an unsupported version."""

    code = EMUNGE_BAD_VERSION


class MungeBadCipherError(MungeError):
    """EMUNGE_BAD_CIPHER: invalid or unsupported cipher type."""

    code = EMUNGE_BAD_CIPHER


class MungeBadMacError(MungeError):
    """EMUNGE_BAD_MAC: invalid or unsupported MAC type."""

    code = EMUNGE_BAD_MAC


class MungeBadZipError(MungeError):
    """EMUNGE_BAD_ZIP: invalid or unsupported compression type."""

    code = EMUNGE_BAD_ZIP


class MungeBadRealmError(MungeError):
    """EMUNGE_BAD_REALM: unrecognized security realm."""

    code = EMUNGE_BAD_REALM


class MungeCredentialInvalidError(MungeError):
    """EMUNGE_CRED_INVALID: the credential does not verify (wrong key or altered)."""

    code = EMUNGE_CRED_INVALID


class MungeExpiredError(MungeError, ExpiredError):
    """EMUNGE_CRED_EXPIRED: the credential's time-to-live has passed."""

    code = EMUNGE_CRED_EXPIRED


class MungeRewoundError(MungeError):
    """EMUNGE_CRED_REWOUND: the credential was encoded in the future (clock skew)."""

    code = EMUNGE_CRED_REWOUND


class MungeReplayedError(MungeError):
    """EMUNGE_CRED_REPLAYED: the credential has already been decoded."""

    code = EMUNGE_CRED_REPLAYED


class MungeUnauthorizedError(MungeError, AudienceError):
    """EMUNGE_CRED_UNAUTHORIZED: the credential is restricted to another uid/gid."""

    code = EMUNGE_CRED_UNAUTHORIZED


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


# --- the serving core --------------------------------------------------------

class ServeError(SlurmAuthError):
    """A call into the C serving core failed (a closed or unknown connection, a system
    call, a cap). ``sys_errno`` is the errno behind a failed system call, else 0."""

    def __init__(self, message: str = "", *, status: Optional[int] = None, sys_errno: int = 0) -> None:
        super().__init__(message, status=status)
        self.sys_errno = sys_errno


class UpstreamError(ServeError):
    """The upstream (slurmctld behind a proxy) failed: refused, closed, timed out or sent
    an oversized reply."""


__all__ = [
    "ServeError", "UpstreamError",
    "InvalidTokenError", "DecodeError", "InvalidSignatureError", "InvalidAlgorithmError",
    "ExpiredSignatureError", "ImmatureSignatureError", "InvalidIssuedAtError", "InvalidAudienceError",
    "InvalidIssuerError", "InvalidSubjectError", "InvalidJTIError", "MissingRequiredClaimError",
    "InvalidKeyError",
    "SlurmAuthError", "CredentialError", "TokenFormatError", "TokenTooLargeError",
    "SegmentError", "Base64Error", "NonCanonicalBase64Error", "HeaderError", "ClaimsError",
    "SignatureError", "SignatureLengthError", "AlgorithmError", "ExpiredError", "KeyIdError",
    "AudienceError", "IdentityError", "ContextError", "PayloadError", "KeyExpiredError",
    "KeyFileError", "KeyFileTypeError", "KeyPermissionError", "JWKSError", "SigningError", "UnpackError",
    "BadArgumentError", "BadArgumentTypeError", "NativeBufferError", "PackError",
    "TruncatedError", "PackLimitError", "StringNulError", "EmbeddedNulError", "FrameError",
    "FramePrefixError", "FrameTooLargeError", "FrameTruncatedError", "FrameTrailingBytesError",
    "ProtocolVersionError", "HeaderTruncatedError", "SlurmdbdFramingError",
    "UnsupportedRetListError", "AddressError", "AuthSectionError", "UnknownAuthPluginError",
    "BodyLengthError", "BodyTruncatedError", "BodyTrailingBytesError", "BodyHashError",
    "MissingBodyHashError", "BlockedNoneHashError", "UnknownHashTypeError",
    "BodyHashLengthError", "BodyHashMsgTypeError", "BodyHashMismatchError",
    "UnsupportedAuthPluginError", "MissingCredentialError", "UserClaimError",
    "UnknownUserError", "AlternateUserError", "TokenCreationError", "LifespanError",
    "TokenCreationDeniedError", "SackError", "SackConnectError", "SackTimeoutError",
    "SackProtocolError", "SackRefusedError", "SackCreateRefusedError", "SackVerifyRefusedError",
    "SackServerError", "MungeError", "MungeUnavailableError", "MungeInternalError",
    "MungeBadArgumentError", "MungeBadLengthError", "MungeOverflowError", "MungeNoMemoryError",
    "MungeSocketError", "MungeTimeoutError", "MungeBadCredentialError", "MungeBadVersionError",
    "MungeBadCipherError", "MungeBadMacError", "MungeBadZipError", "MungeBadRealmError",
    "MungeCredentialInvalidError", "MungeExpiredError", "MungeRewoundError",
    "MungeReplayedError", "MungeUnauthorizedError", "MungeRestrictionNotEnforcedError",
    "munge_error_class",
]
