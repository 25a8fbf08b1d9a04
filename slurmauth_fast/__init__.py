"""slurmauth_fast: create and verify Slurm authentication credentials fast,
byte-compatible with Slurm (auth/slurm, auth/jwt, auth/munge, SACK).

The main names::

    from slurmauth_fast import Keyring, Verifier, create_credential, verify_rpc
    ring = Keyring.load(conf_dir="/etc/slurm")
    token = create_credential(ring, uid=1000, gid=1000)
    cred = Verifier(ring, verifier_uid=0).verify(token)       # a Credential

Errors derive from :class:`SlurmAuthError` (the full tree is in
:mod:`slurmauth_fast.exceptions`); README "Layout" maps each plugin to its module.
"""
from __future__ import annotations

from . import errors
from ._version import __version__
from .credential import Credential, create_credential, create_many
from .exceptions import (
    AlgorithmError, AudienceError, BadArgumentError, BadArgumentTypeError, BodyHashError,
    ClaimsError, ContextError, CredentialError, DecodeError, ExpiredError, ExpiredSignatureError,
    FrameError, HeaderError, ImmatureSignatureError, InvalidAlgorithmError, InvalidAudienceError,
    InvalidIssuedAtError, InvalidIssuerError, InvalidJTIError, InvalidKeyError,
    InvalidSignatureError, InvalidSubjectError, InvalidTokenError, KeyFileError, KeyIdError,
    MissingCredentialError, MissingRequiredClaimError, MungeError, PackError, SackError,
    SignatureError, SigningError, SlurmAuthError, TokenFormatError, UnpackError,
    UnsupportedAuthPluginError,
)
from .frame_verifier import FrameVerifier, VerifiedRpc, verify_rpc
from .jws import DEFAULT_MAX_TOKEN, HS256Key, VerifiedJWS
from .jwt import JWTCredential, JWTVerifier
from .jwt_decode import decode
from .keys import Keyring, KeySnapshot
from .frame import RpcFrame, pack_frame, parse_frame
from .unverified import decode_unverified, get_unverified_header
from .verifier import VerifiedBatch, Verifier

__all__ = [
    "DEFAULT_MAX_TOKEN", "AlgorithmError", "AudienceError", "BadArgumentError",
    "BadArgumentTypeError", "BodyHashError", "ClaimsError", "ContextError", "Credential",
    "CredentialError", "ExpiredError", "FrameError", "FrameVerifier", "HS256Key", "HeaderError",
    "JWTCredential", "JWTVerifier", "KeyFileError", "KeyIdError", "KeySnapshot", "Keyring",
    "MissingCredentialError", "MungeError", "PackError", "RpcFrame", "SackError", "SignatureError",
    "SigningError", "SlurmAuthError", "TokenFormatError", "UnpackError",
    "UnsupportedAuthPluginError", "VerifiedBatch", "VerifiedJWS", "VerifiedRpc", "Verifier",
    "DecodeError", "ExpiredSignatureError", "ImmatureSignatureError", "InvalidAlgorithmError",
    "InvalidAudienceError", "InvalidIssuedAtError", "InvalidIssuerError", "InvalidJTIError",
    "InvalidKeyError", "InvalidSignatureError", "InvalidSubjectError", "InvalidTokenError",
    "MissingRequiredClaimError", "decode",
    "__version__", "create_credential", "create_many", "decode_unverified", "errors", "get_unverified_header",
    "pack_frame", "parse_frame", "verify_rpc",
]
