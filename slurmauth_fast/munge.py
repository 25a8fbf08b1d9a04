"""MUNGE credentials through libmunge (Slurm's auth/munge, plugin 101).

Slurm's auth/munge plugin asks the local ``munged`` to encode a credential
(``munge_encode``) whose payload is the RPC body hash (spec section 3), packs
the resulting ``"MUNGE:...:"`` string into the RPC's auth section, and the
receiving daemon asks its own ``munged`` to decode it (``munge_decode``).
munged authenticates the encoder through the kernel (the uid/gid it reports
are the encoding process's, not something the sender claims), checks the MAC,
the time-to-live, the replay cache and the optional uid/gid decode
restriction. This module is the typed API over that library; the calls into
it are in :mod:`slurmauth_fast._bindings.munge`.

Binding: cffi ABI mode with its own FFI object; ``libmunge.so.2`` is opened
lazily on first use, so the rest of slurmauth_fast imports and works without
MUNGE installed; a MUNGE call then raises :class:`MungeUnavailableError`.
Every libmunge call releases the GIL (cffi does this for every C call).

Thread safety: a libmunge context must not be shared between threads, so
every :meth:`MungeContext.encode` / :meth:`MungeContext.decode` call creates
its own context and destroys it before returning. :class:`MungeContext` itself
is an immutable settings object, safe to share.

Memory: everything libmunge allocates is released here: the credential
string and the decoded payload (both with ``free()``, as munge_encode(3) and
munge_decode(3) require; both are overwritten with zeros first) and the
context (``munge_ctx_destroy``).

Errors: every ``munge_err_t`` code maps to its own class in
:mod:`slurmauth_fast.errors` (``MungeExpiredError``, ``MungeReplayedError``,
``MungeSocketError``, ...); the code is on the exception as ``munge_errno``
and munged's own detailed message (``munge_ctx_strerror``) is the message.
"""
from __future__ import annotations

import enum
import ipaddress
import os
import threading
from dataclasses import dataclass, field
from typing import Any, Iterable, List, Optional, Tuple, Union


from ._bindings import munge as _bm
from .bodyhash import DEFAULT_HASH_PLUGINS, HASH_K12, body_hash_payload, check_body_hash
from .codes import EMUNGE_CRED_EXPIRED, EMUNGE_CRED_REPLAYED, EMUNGE_CRED_REWOUND, EMUNGE_SUCCESS
from .errors import (
    MungeBadArgumentError,
    MungeBadCredentialError,
    MungeBadLengthError,
    MungeBadMacError,
    MungeError,
    MungeRestrictionNotEnforcedError,
    MungeUnauthorizedError,
    MungeUnavailableError,
)
from .frame import AUTH_MUNGE, RpcFrame, auth_credential, pack_frame, parse_frame

#: The shared object Slurm and the munge tools link against (Debian: libmunge2).
LIBMUNGE = "libmunge.so.2"

#: Default munged socket (munge 0.5.15's compiled-in default).
DEFAULT_SOCKET = "/run/munge/munge.socket.2"

#: Longest credential string accepted by :meth:`MungeContext.decode`, checked
#: before anything is sent to munged. munged 0.5.15 refuses any request over
#: 1 MiB (EMUNGE_BAD_LENGTH), so a longer credential can never decode; Slurm's
#: own credentials (a 33-byte body hash payload) are under 200 bytes.
DEFAULT_MAX_CRED = 1024 * 1024

#: ``ttl`` value asking munged for its default time-to-live (MUNGE_TTL_DEFAULT).
TTL_DEFAULT = 0
#: ``ttl`` value asking munged for its maximum time-to-live (MUNGE_TTL_MAXIMUM).
TTL_MAXIMUM = -1

_UID_ANY = 0xFFFFFFFF  # MUNGE_UID_ANY / MUNGE_GID_ANY (-1) as uid_t / gid_t
_INT_MAX = 0x7FFFFFFF

#: Codes for which munge_decode still returns the credential's contents.
_CONTENTS_RETURNED = frozenset({EMUNGE_CRED_EXPIRED, EMUNGE_CRED_REWOUND, EMUNGE_CRED_REPLAYED})


class Cipher(enum.IntEnum):
    """munge_cipher_t: symmetric cipher used for the credential."""

    NONE = 0
    DEFAULT = 1
    BLOWFISH = 2
    CAST5 = 3
    AES128 = 4
    AES256 = 5


class Mac(enum.IntEnum):
    """munge_mac_t: message authentication code used for the credential."""

    NONE = 0  # invalid: MungeContext refuses it
    DEFAULT = 1
    MD5 = 2
    SHA1 = 3
    RIPEMD160 = 4
    SHA256 = 5
    SHA512 = 6


class Zip(enum.IntEnum):
    """munge_zip_t: compression applied to the payload."""

    NONE = 0
    DEFAULT = 1
    BZLIB = 2
    ZLIB = 3


_load_lock = threading.Lock()
_libs: Optional[Tuple[Any, Any]] = None


def _load() -> Tuple[Any, Any]:
    """(libmunge, libc), opened on first use; MungeUnavailableError when absent."""
    global _libs
    libs = _libs
    if libs is not None:
        return libs
    with _load_lock:
        if _libs is None:
            try:
                _libs = _bm.open_libs(LIBMUNGE)
            except OSError as e:
                raise MungeUnavailableError(
                    f"MUNGE is not available: cannot load {LIBMUNGE} ({e}); "
                    "install the libmunge2 package (Debian/Ubuntu) or munge-libs (RHEL)"
                ) from None
        return _libs


def available() -> bool:
    """True when libmunge can be loaded (munged may still be down)."""
    try:
        _load()
    except MungeUnavailableError:
        return False
    return True


def strerror(munge_errno: int) -> str:
    """libmunge's description of a munge_err_t code (``munge_strerror``)."""
    text = _bm.strerror(_load(), munge_errno)
    return text if text is not None else f"munge error {munge_errno}"


def is_supported(value: Union[Cipher, Mac, Zip]) -> bool:
    """Whether this libmunge build supports a cipher, MAC or compression type
    (``munge_enum_is_valid``; e.g. bzlib is a compile-time option)."""
    kind = {Cipher: 0, Mac: 1, Zip: 2}.get(type(value))  # munge_enum_t
    if kind is None:
        raise MungeBadArgumentError(f"not a Cipher, Mac or Zip: {value!r}")
    return _bm.enum_is_valid(_load(), kind, int(value))


@dataclass(frozen=True)
class MungeCredential:
    """A decoded MUNGE credential, as munged reported it.

    ``uid``/``gid`` identify the process that encoded the credential (munged
    learned them from the kernel). ``payload`` is the data the encoder put in
    (for Slurm RPCs: the body hash, spec section 3); it is not shown by repr.
    ``uid_restriction``/``gid_restriction`` are None when the credential may be
    decoded by anyone.
    """

    uid: int
    gid: int
    payload: bytes = field(repr=False)
    encode_time: int
    decode_time: int
    ttl: int
    origin: ipaddress.IPv4Address
    cipher: Cipher
    mac: Mac
    zip: Zip
    uid_restriction: Optional[int]
    gid_restriction: Optional[int]


CredLike = Union[str, bytes, bytearray, memoryview]
PayloadLike = Union[bytes, bytearray, memoryview]


def _as_cred_bytes(cred: CredLike, max_len: int) -> bytes:
    if isinstance(cred, str):
        try:
            raw = cred.encode("ascii")
        except UnicodeEncodeError:
            raise MungeBadCredentialError("MUNGE credential contains non-ASCII characters") from None
    elif isinstance(cred, (bytes, bytearray, memoryview)):
        raw = bytes(cred)
    else:
        raise MungeBadArgumentError(f"credential must be str or bytes, not {type(cred).__name__}")
    if len(raw) > max_len:
        raise MungeBadLengthError(f"MUNGE credential is {len(raw)} bytes, over the {max_len}-byte limit")
    if b"\0" in raw:
        # libmunge reads a NUL-terminated string: an embedded NUL would make it
        # decode a prefix of what the caller holds.
        raise MungeBadCredentialError("MUNGE credential contains a NUL byte")
    return raw


def _check_id(name: str, value: Optional[int]) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < _UID_ANY:
        raise MungeBadArgumentError(f"{name} must be None or an integer in 0..4294967294, not {value!r}")


def _check_c_string(name: str, value: Optional[str]) -> None:
    if value is None:
        return
    if not isinstance(value, str) or "\0" in value or not value:
        raise MungeBadArgumentError(f"{name} must be a non-empty str without NUL, not {value!r}")


@dataclass(frozen=True)
class MungeContext:
    """Settings for talking to munged: one libmunge context is built from them
    per call (libmunge contexts are not thread-safe; this object is).

    - ``socket``: munged's socket; None means libmunge's default
      (:data:`DEFAULT_SOCKET`). Slurm sets it from ``AuthInfo=socket=PATH``.
    - ``ttl``: credential time-to-live in seconds for encoding; 0 asks for
      munged's default (300 s), -1 for its maximum. Slurm sets it from
      ``AuthInfo=ttl=N``.
    - ``uid_restriction`` / ``gid_restriction``: only a process with this uid
      (gid) may decode the credential; None means anyone.
    - ``cipher`` / ``mac`` / ``zip``: algorithms for encoding; DEFAULT lets
      munged choose (0.5.15: aes128, sha256, no compression).
    - ``realm``: munge_ctx's security-realm option (munged 0.5.15 does not
      implement realms; kept for completeness).

    Decoding uses only ``socket``: everything else is read from the credential.
    """

    socket: Optional[str] = None
    ttl: int = TTL_DEFAULT
    uid_restriction: Optional[int] = None
    gid_restriction: Optional[int] = None
    cipher: Cipher = Cipher.DEFAULT
    mac: Mac = Mac.DEFAULT
    zip: Zip = Zip.DEFAULT
    realm: Optional[str] = None

    def __post_init__(self) -> None:
        _check_c_string("socket", self.socket)
        _check_c_string("realm", self.realm)
        if isinstance(self.ttl, bool) or not isinstance(self.ttl, int) or not -1 <= self.ttl <= _INT_MAX:
            raise MungeBadArgumentError(f"ttl must be an integer in -1..{_INT_MAX}, not {self.ttl!r}")
        _check_id("uid_restriction", self.uid_restriction)
        _check_id("gid_restriction", self.gid_restriction)
        for name, kind in (("cipher", Cipher), ("mac", Mac), ("zip", Zip)):
            value = getattr(self, name)
            try:
                object.__setattr__(self, name, kind(value))
            except ValueError:
                raise MungeBadArgumentError(f"{name} must be a {kind.__name__}, not {value!r}") from None
        if self.mac == Mac.NONE:
            # munge.h: "mac disabled -- invalid"; munged fails the encode
            # (as EMUNGE_SNAFU), so refuse it here with the specific error.
            raise MungeBadMacError("mac must not be Mac.NONE: MUNGE credentials always carry a MAC")

    # -- libmunge context handling ------------------------------------------

    def _options(self, *, for_encode: bool) -> List[Tuple[int, Any]]:
        """The munge_ctx_set (option, value) pairs for these settings."""
        opts: List[Tuple[int, Any]] = []
        if self.socket is not None:
            opts.append((_bm.OPT_SOCKET, self.socket))
        if for_encode:
            if self.realm is not None:
                opts.append((_bm.OPT_REALM, self.realm))
            if self.ttl != TTL_DEFAULT:
                opts.append((_bm.OPT_TTL, self.ttl))
            if self.uid_restriction is not None:
                opts.append((_bm.OPT_UID_RESTRICTION, self.uid_restriction))
            if self.gid_restriction is not None:
                opts.append((_bm.OPT_GID_RESTRICTION, self.gid_restriction))
            if self.cipher != Cipher.DEFAULT:
                opts.append((_bm.OPT_CIPHER_TYPE, int(self.cipher)))
            if self.mac != Mac.DEFAULT:
                opts.append((_bm.OPT_MAC_TYPE, int(self.mac)))
            if self.zip != Zip.DEFAULT:
                opts.append((_bm.OPT_ZIP_TYPE, int(self.zip)))
        return opts

    # -- the two operations ---------------------------------------------------

    def encode(self, payload: PayloadLike = b"") -> str:
        """Ask munged for a credential carrying ``payload``; returns the
        ``"MUNGE:...:"`` string that Slurm packs into the auth section."""
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise MungeBadArgumentError(f"payload must be bytes, not {type(payload).__name__}")
        libs = _load()
        try:
            n = memoryview(payload).nbytes
            if not memoryview(payload).contiguous:
                raise ValueError("the buffer is not contiguous")
        except (TypeError, ValueError) as e:  # e.g. a non-contiguous memoryview
            raise MungeBadArgumentError(f"payload: {e}") from None
        if n > _INT_MAX:
            raise MungeBadArgumentError("payload is larger than libmunge accepts")
        ctx = _bm.new_ctx(libs, self._options(for_encode=True))
        try:
            return _bm.encode(libs, ctx, payload)
        finally:
            _bm.destroy(libs, ctx)

    def decode(self, cred: CredLike, *, max_len: int = DEFAULT_MAX_CRED) -> MungeCredential:
        """Ask munged to decode ``cred`` (a ``"MUNGE:...:"`` string).

        Returns the credential when munged says it is valid; otherwise raises
        the specific :class:`~slurmauth_fast.errors.MungeError` subclass (for
        expired, rewound and replayed credentials the exception's
        ``credential`` holds what munged returned, for diagnostics only).
        """
        raw = _as_cred_bytes(cred, max_len)
        libs = _load()
        ctx = _bm.new_ctx(libs, self._options(for_encode=False))
        try:
            err, uid, gid, payload = _bm.decode(libs, ctx, raw)
            if err == EMUNGE_SUCCESS:
                return _credential(libs, ctx, uid, gid, payload)
            exc = _bm.error(libs, ctx, err, "munge decode failed")
            if err in _CONTENTS_RETURNED:
                exc.credential = _credential(libs, ctx, uid, gid, payload)
            raise exc
        finally:
            _bm.destroy(libs, ctx)


def _credential(libs: Any, ctx: Any, uid: int, gid: int, payload: bytes) -> MungeCredential:
    """Read what munge_decode left in the context into a MungeCredential."""
    got = _bm.decoded_fields(libs, ctx)
    uid_r, gid_r = got["uid_restriction"], got["gid_restriction"]
    return MungeCredential(
        uid=uid,
        gid=gid,
        payload=payload,
        encode_time=got["encode_time"],
        decode_time=got["decode_time"],
        ttl=got["ttl"],
        origin=ipaddress.IPv4Address(got["origin"]),
        cipher=_enum(Cipher, got["cipher"]),
        mac=_enum(Mac, got["mac"]),
        zip=_enum(Zip, got["zip"]),
        uid_restriction=None if uid_r == _UID_ANY else uid_r,
        gid_restriction=None if gid_r == _UID_ANY else gid_r,
    )


def _enum(kind: Any, value: int) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise MungeError(f"munged reported an unknown {kind.__name__} type {value}") from None


# -- module-level conveniences ------------------------------------------------

_DEFAULT_CONTEXT = MungeContext()


def encode(payload: PayloadLike = b"", context: Optional[MungeContext] = None) -> str:
    """Encode ``payload`` with ``context`` (default: munged's default socket and settings)."""
    return (context or _DEFAULT_CONTEXT).encode(payload)


def decode(cred: CredLike, context: Optional[MungeContext] = None, *,
           max_len: int = DEFAULT_MAX_CRED) -> MungeCredential:
    """Decode ``cred`` through munged (``context`` supplies the socket)."""
    return (context or _DEFAULT_CONTEXT).decode(cred, max_len=max_len)


def check_uid_restriction_enforced(context: Optional[MungeContext] = None) -> None:
    """Slurm's start-up self-test for auth/munge: MUNGE has a compile-time
    option letting root decode any credential regardless of its uid
    restriction, and Slurm daemons refuse to run with it. This encodes a
    credential restricted to (this uid + 1) and makes sure munged refuses to
    decode it for us; raises :class:`MungeRestrictionNotEnforcedError` if it
    does not (and any other MungeError, e.g. munged down, as is)."""
    ctx = context or _DEFAULT_CONTEXT
    other = (os.getuid() + 1) % _UID_ANY
    cred = MungeContext(socket=ctx.socket, uid_restriction=other).encode()
    try:
        ctx.decode(cred)
    except MungeUnauthorizedError:
        return
    raise MungeRestrictionNotEnforcedError(
        f"munged let uid {os.getuid()} decode a credential restricted to uid {other}: "
        "MUNGE allows root to decode any credential (Slurm refuses to start)")


# -- auth/munge RPCs (plugin 101) ----------------------------------------------


@dataclass(frozen=True)
class VerifiedMungeRpc:
    """An RPC whose MUNGE credential munged decoded and whose body hash matched.
    The sender's identity is ``credential.uid`` / ``credential.gid``."""

    frame: RpcFrame
    credential: MungeCredential


def _rpc_context(context: Optional[MungeContext], socket: Optional[str]) -> MungeContext:
    if context is not None and socket is not None:
        raise MungeBadArgumentError("give either context or socket, not both")
    if context is not None:
        if not isinstance(context, MungeContext):
            raise MungeBadArgumentError("context must be a MungeContext")
        return context
    return MungeContext(socket=socket) if socket is not None else _DEFAULT_CONTEXT


def verify_munge_rpc(frame_bytes: Union[RpcFrame, PayloadLike], *, context: Optional[MungeContext] = None,
                     socket: Optional[str] = None, block_null_hash: bool = False,
                     block_zero_hash: bool = False, length_prefix: bool = True,
                     max_cred: int = DEFAULT_MAX_CRED,
                     hash_plugins: Iterable[str] = DEFAULT_HASH_PLUGINS) -> VerifiedMungeRpc:
    """Authenticate one auth/munge RPC as a Slurm daemon does.

    ``frame_bytes`` is the frame (``length_prefix``: starting with its uint32
    total length) or an already parsed :class:`~slurmauth_fast.rpc.RpcFrame`.
    The auth section must be plugin 101 carrying a credential string; munged
    (at ``socket``, or ``context.socket``) decodes it, which checks the MAC, the
    time-to-live, the replay cache and any uid/gid restriction against this
    process; then the credential's payload must bind this body and msg_type
    (spec section 3; ``block_null_hash`` / ``block_zero_hash`` are Slurm's
    CommunicationParameters, ``hash_plugins`` its HashPlugin list). As in Slurm, a credential without payload counts
    as carrying no hash, and the credential is consumed (replay cache) even
    when the body hash then fails.
    """
    ctx = _rpc_context(context, socket)
    frame = frame_bytes if isinstance(frame_bytes, RpcFrame) else parse_frame(frame_bytes,
                                                                            length_prefix=length_prefix)
    cred = ctx.decode(auth_credential(frame, AUTH_MUNGE), max_len=max_cred)
    check_body_hash(cred.payload, frame.body, frame.msg_type, block_null_hash=block_null_hash,
                    block_zero_hash=block_zero_hash, hash_plugins=hash_plugins)
    return VerifiedMungeRpc(frame, cred)


def pack_munge_rpc(msg_type: int, body: PayloadLike, *, context: Optional[MungeContext] = None,
                   socket: Optional[str] = None, hash_type: Optional[int] = HASH_K12,
                   **frame_options: Any) -> bytes:
    """Pack an RPC the way a Slurm sender with AuthType=auth/munge does: munged
    encodes a credential whose payload is the body hash of ``body`` and
    ``msg_type`` (``hash_type`` HASH_K12, Slurm's default; HASH_SHA3; HASH_NONE;
    or None for no payload at all), packed as plugin 101. ``context`` sets the
    socket, ttl and the uid restriction (Slurm restricts to the receiver's uid
    when it knows it). ``frame_options`` go to :func:`~slurmauth_fast.rpc.pack_frame`."""
    ctx = _rpc_context(context, socket)
    payload = b"" if hash_type is None else body_hash_payload(body, msg_type, hash_type)
    cred = ctx.encode(payload)
    return pack_frame(msg_type, body, credential=cred, plugin=AUTH_MUNGE, **frame_options)


__all__ = [
    "DEFAULT_MAX_CRED", "DEFAULT_SOCKET", "LIBMUNGE", "TTL_DEFAULT", "TTL_MAXIMUM", "Cipher", "Mac",
    "MungeContext", "MungeCredential", "VerifiedMungeRpc", "Zip", "available", "check_uid_restriction_enforced",
    "decode", "encode", "is_supported", "pack_munge_rpc", "strerror", "verify_munge_rpc",
]
