"""Slurm RPC frames: parse, pack and verify what a controller receives.

On a stream socket Slurm sends ``uint32 total_len`` (everything after it),
then the header, then the auth section (absent with the NO_AUTH_CRED flag),
then the packed body::

    version u16 | flags u16 | msg_type u16 | body_length u32
    forward_cnt u16 [nodelist str, timeout u32, tree_width u16,
                     (net_cred str if PACK_ADDRS), tree_depth u16]
    ret_cnt u16 | orig_addr (family u16, then AF_INET: u32 + u16 port,
                             AF_INET6: packmem(16) + u16 port, else nothing)
    auth: plugin_id u32, then 101 munge: str cred | 102 jwt: str token,
          str username | 103 slurm: str token | 100 none: nothing
    body: body_length bytes

With the SLURMDBD_CONNECTION flag the sender packs the msg_type once more
before the version (slurmdbd reads it first); pass ``slurmdbd=True``.

Parsing happens in C (``csrc/rpc.c``) in one call: every length is checked
against the bytes present before it is used, each kind of malformation has
its own exception (all :class:`~slurmauth_fast.errors.FrameError` or
:class:`~slurmauth_fast.errors.PackError`), and the body comes back as a
zero-copy :class:`memoryview` of the input.

:func:`verify_rpc` is what a controller does with a frame: verify the
auth/slurm credential (signature, expiry, ruid, context "auth"/"sack") and
then check that the credential's payload hashes this very body and msg_type.
"""
from __future__ import annotations

import functools
import ipaddress
import socket
import struct
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable, Optional, Tuple, Union

from ._core import ffi, lib
from .bodyhash import HASH_K12, HASH_NONE, HASH_SHA3, body_hash_payload, check_body_hash
from .errors import (
    AddressError,
    AuthSectionError,
    BadArgumentError,
    BodyTrailingBytesError,
    BodyTruncatedError,
    CredentialError,
    FramePrefixError,
    FrameTooLargeError,
    FrameTrailingBytesError,
    FrameTruncatedError,
    HeaderTruncatedError,
    MissingCredentialError,
    ProtocolVersionError,
    SlurmdbdFramingError,
    UnknownAuthPluginError,
    UnsupportedAuthPluginError,
    UnsupportedRetListError,
    error_for_status,
    raise_for_status,
    register_status,
)
from .pack import BytesLike, StrLike, bytes_str, str_bytes

if TYPE_CHECKING:  # pragma: no cover
    from .tokens import Credential, Verifier

#: Slurm 26.05's protocol version (major << 8); 23.11 = 0x2800 ... 26.11 = 0x2E00.
PROTOCOL_VERSION = lib.SA_PROTOCOL_VERSION


def supported_versions(current: int = PROTOCOL_VERSION) -> Tuple[int, int]:
    """The (oldest, newest) protocol versions a daemon of version ``current``
    accepts: its own and the three releases before it."""
    if not isinstance(current, int) or not lib.SA_PROTOCOL_OLDEST_DELTA <= current <= 0xFFFF:
        raise BadArgumentError(f"protocol version {current!r} is not valid")
    return (current - lib.SA_PROTOCOL_OLDEST_DELTA, current)


#: Accepted by default: 24.11 (0x2A00) through 26.05 (0x2D00).
DEFAULT_VERSIONS = supported_versions()

#: Slurm's own cap on one message (MAX_MSG_SIZE, 1 GiB); a shim should use less.
MAX_FRAME = 1024 * 1024 * 1024

# header flags
GLOBAL_AUTH_KEY = lib.SA_RPC_GLOBAL_AUTH_KEY
SLURMDBD_CONNECTION = lib.SA_RPC_SLURMDBD_CONNECTION
MSG_KEEP_BUFFER = lib.SA_RPC_MSG_KEEP_BUFFER
USE_BCAST_NETWORK = lib.SA_RPC_USE_BCAST_NETWORK
CTLD_QUEUE_PROCESSING = lib.SA_RPC_CTLD_QUEUE_PROCESSING
NO_AUTH_CRED = lib.SA_RPC_NO_AUTH_CRED
PACK_ADDRS = lib.SA_RPC_PACK_ADDRS

# auth plugin ids
AUTH_NONE = lib.SA_AUTH_NONE
AUTH_MUNGE = lib.SA_AUTH_MUNGE
AUTH_JWT = lib.SA_AUTH_JWT
AUTH_SLURM = lib.SA_AUTH_SLURM
_AUTH_PLUGINS = (AUTH_NONE, AUTH_MUNGE, AUTH_JWT, AUTH_SLURM)

AF_UNSPEC = lib.SA_AF_UNSPEC
AF_INET = lib.SA_AF_INET
AF_INET6 = lib.SA_AF_INET6

# message types used here
REQUEST_PING = 1008
RESPONSE_SLURM_RC = 8001

_FRAME_ERRORS = [
    (lib.SA_E_RPC_PREFIX_SHORT, FramePrefixError, "fewer than 4 bytes: no length prefix"),
    (lib.SA_E_RPC_TOO_LARGE, FrameTooLargeError, "frame length above the cap"),
    (lib.SA_E_RPC_TRUNCATED, FrameTruncatedError, "frame shorter than its length prefix says"),
    (lib.SA_E_RPC_TRAILING, FrameTrailingBytesError, "bytes beyond the length prefix"),
    (lib.SA_E_RPC_VERSION, ProtocolVersionError, "protocol version not accepted"),
    (lib.SA_E_RPC_HEADER_SHORT, HeaderTruncatedError, "header cut short"),
    (lib.SA_E_RPC_DBD_FLAG, SlurmdbdFramingError,
     "SLURMDBD_CONNECTION flag disagrees with the framing"),
    (lib.SA_E_RPC_DBD_MSG_TYPE, SlurmdbdFramingError,
     "slurmdbd msg_type prefix differs from the header's"),
    (lib.SA_E_RPC_RET_LIST, UnsupportedRetListError,
     "ret_cnt > 0: per-node reply lists are not supported"),
    (lib.SA_E_RPC_ADDR6_LEN, AddressError, "AF_INET6 orig_addr is not 16 bytes"),
    (lib.SA_E_RPC_AUTH_SHORT, AuthSectionError, "auth section cut short"),
    (lib.SA_E_RPC_AUTH_PLUGIN, UnknownAuthPluginError, "unknown auth plugin id"),
    (lib.SA_E_RPC_BODY_SHORT, BodyTruncatedError, "body shorter than body_length"),
    (lib.SA_E_RPC_BODY_TRAILING, BodyTrailingBytesError, "bytes after body_length"),
    (lib.SA_E_RPC_OPTIONS, BadArgumentError, "invalid frame options"),
]
for _code, _exc, _msg in _FRAME_ERRORS:
    register_status(_code, _exc, _msg)


@dataclass(frozen=True)
class Forward:
    """The header's forward section: the message is to be fanned out to
    ``cnt`` more nodes along a tree."""

    cnt: int
    nodelist: Optional[str]
    timeout: int
    tree_width: int
    tree_depth: int
    net_cred: Optional[str] = None   # only with the PACK_ADDRS flag


@dataclass(frozen=True)
class OrigAddr:
    """The sender's address as the header carries it.

    Slurm packs ``sin_addr.s_addr`` and ``sin_port`` (already in network
    order in memory) with pack32/pack16, i.e. as host integers; on the
    little-endian hosts Slurm runs on, the wire bytes of an AF_INET address
    and of both ports are therefore byte-reversed. ``host``/``port`` here are
    the real address and port; AF_INET6 addresses travel as plain 16 bytes.
    For other families only ``family`` is set."""

    family: int
    host: Optional[str] = None
    port: int = 0


@dataclass(frozen=True)
class RpcFrame:
    """One parsed RPC. ``body`` is a view into the parsed bytes (no copy); the
    offsets index that same buffer (prefix included when there is one)."""

    version: int
    flags: int
    msg_type: int
    body_length: int
    forward: Optional[Forward]
    ret_cnt: int
    orig_addr: Optional[OrigAddr]
    auth_plugin: Optional[int]          # None with NO_AUTH_CRED
    auth_cred: Optional[bytes]          # token / munge credential; None when NULL or absent
    auth_username: Optional[str]        # auth/jwt only
    body: memoryview
    total_len: int
    header_offset: int
    auth_offset: int
    body_offset: int

    def __repr__(self) -> str:  # credentials are bearer secrets: never show them
        cred = "None" if self.auth_cred is None else f"<{len(self.auth_cred)} bytes>"
        return (f"RpcFrame(version={self.version:#06x}, flags={self.flags:#06x}, "
                f"msg_type={self.msg_type}, body_length={self.body_length}, "
                f"forward={self.forward!r}, orig_addr={self.orig_addr!r}, "
                f"auth_plugin={self.auth_plugin}, auth_cred={cred}, "
                f"auth_username={self.auth_username!r})")


def _swap16(v: int) -> int:
    return ((v & 0xFF) << 8) | (v >> 8)


def _orig_addr(f: Any, view: memoryview) -> Optional[OrigAddr]:
    fam = f.addr_family
    if fam == AF_UNSPEC:
        return None
    if fam == AF_INET:
        host = socket.inet_ntop(socket.AF_INET, int(f.addr_v4).to_bytes(4, "little"))
        return OrigAddr(fam, host, _swap16(f.addr_port))
    if fam == AF_INET6:
        off = f.addr_v6_off
        return OrigAddr(fam, str(ipaddress.IPv6Address(bytes(view[off:off + 16]))),
                        _swap16(f.addr_port))
    return OrigAddr(fam)


def _str_view(view: memoryview, off: int, wire_len: int) -> Optional[bytes]:
    return bytes(view[off:off + wire_len - 1]) if wire_len else None


@functools.lru_cache(maxsize=64)
def _parse_opts(lo: int, hi: int, max_frame: int, length_prefix: bool, slurmdbd: bool) -> Any:
    """The C options struct for one configuration (built once, read-only after)."""
    return ffi.new("sa_rpc_opts *", {
        "min_version": lo, "max_version": hi, "max_frame": min(max(max_frame, 0), 0xFFFFFFFF),
        "length_prefix": 1 if length_prefix else 0, "slurmdbd": 1 if slurmdbd else 0,
    })


def _default_opts() -> Any:
    """The options of a default parse_frame() call (built once)."""
    opts = _DEFAULT_OPTS
    if not opts:
        opts.append(_parse_opts(DEFAULT_VERSIONS[0], DEFAULT_VERSIONS[1], MAX_FRAME, True, False))
    return opts[0]


_DEFAULT_OPTS: list = []


def _version_range(versions: Iterable[int]) -> Tuple[int, int]:
    vs = versions if versions is DEFAULT_VERSIONS else tuple(versions)
    if not vs or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in vs):
        raise BadArgumentError("versions must be uint16 protocol versions")
    return min(vs), max(vs)


def _fields(*names: str) -> struct.Struct:
    """A struct format reading these sa_rpc_frame fields (in layout order) in
    one unpack_from, the bytes between them skipped; offsets, sizes and
    signedness come from cffi, so it follows the C layout."""
    fields = dict(ffi.typeof("sa_rpc_frame").fields)
    fmt, pos = "=", 0
    for name in names:
        field = fields[name]
        size = ffi.sizeof(field.type)
        code = {2: "H", 4: "I", 8: "Q"}[size]
        if int(ffi.cast(field.type, -1)) < 0:
            code = code.lower()
        assert field.offset >= pos, name
        fmt += f"{field.offset - pos}x{code}" if field.offset > pos else code
        pos = field.offset + size
    return struct.Struct(fmt)


# sa_rpc_frame as Python reads it: struct.unpack_from of the fields every
# frame has (one call instead of a cdata attribute read per field, each of
# which costs as much as a small call), and of the forward fields when the
# frame has a forward section.
_FRAME = _fields("total_len", "header_off", "version", "flags", "msg_type", "body_length",
                 "forward_cnt", "ret_cnt", "addr_family", "auth_off", "has_auth", "auth_plugin",
                 "cred_off", "cred_len", "user_off", "user_len", "body_off")
_FORWARD = _fields("fwd_nodelist_off", "fwd_nodelist_len", "fwd_timeout", "fwd_tree_width",
                   "fwd_has_net_cred", "fwd_net_cred_off", "fwd_net_cred_len", "fwd_tree_depth")
_tls = threading.local()
_new = object.__new__
_set = object.__setattr__


def _frame_struct() -> Tuple[Any, Any]:
    """This thread's sa_rpc_frame and a buffer over it (reused: parse writes
    every field it reports)."""
    try:
        return _tls.f  # type: ignore[no-any-return]
    except AttributeError:
        f = ffi.new("sa_rpc_frame *")
        _tls.f = (f, ffi.buffer(f))
        return _tls.f  # type: ignore[no-any-return]


def _frame_from(data: BytesLike, view: memoryview, f: Any, fbuf: Any) -> "RpcFrame":
    """The RpcFrame for a frame sa_rpc_parse accepted into ``f``."""
    (total_len, header_off, version, flags, msg_type, body_length, forward_cnt, ret_cnt, family,
     auth_off, has_auth, plugin, cred_off, cred_len, user_off, user_len,
     body_off) = _FRAME.unpack_from(fbuf)
    forward = None
    if forward_cnt:
        (nl_off, nl_len, fwd_timeout, tree_width, has_net, net_off, net_len,
         tree_depth) = _FORWARD.unpack_from(fbuf)
        forward = Forward(
            cnt=forward_cnt, nodelist=bytes_str(_str_view(view, nl_off, nl_len)),
            timeout=fwd_timeout, tree_width=tree_width, tree_depth=tree_depth,
            net_cred=bytes_str(_str_view(view, net_off, net_len)) if has_net else None)
    frame = _new(RpcFrame)
    # Frozen dataclass: fill its __dict__ at once (what __init__ would set, field by field).
    _set(frame, "__dict__", {
        "version": version, "flags": flags, "msg_type": msg_type, "body_length": body_length,
        "forward": forward, "ret_cnt": ret_cnt,
        "orig_addr": None if family == AF_UNSPEC else _orig_addr(f, view),
        "auth_plugin": plugin if has_auth else None,
        "auth_cred": (data[cred_off:cred_off + cred_len - 1] if type(data) is bytes
                      else _str_view(view, cred_off, cred_len)) if cred_len else None,
        "auth_username": bytes_str(_str_view(view, user_off, user_len)) if user_len else None,
        "body": view[body_off:body_off + body_length],
        "total_len": total_len, "header_offset": header_off, "auth_offset": auth_off,
        "body_offset": body_off})
    return frame


def parse_frame(data: BytesLike, *, length_prefix: bool = True,
                versions: Iterable[int] = DEFAULT_VERSIONS, max_frame: int = MAX_FRAME,
                slurmdbd: bool = False) -> RpcFrame:
    """Parse one whole RPC frame.

    ``data`` must be exactly one frame: with ``length_prefix`` it starts with
    the uint32 total_len and must hold exactly that many more bytes; without,
    it is the header onwards. A version is accepted when it lies between the
    lowest and highest of ``versions`` (Slurm's range check; default 24.11
    through 26.05 — use :func:`supported_versions` for another current
    version). ``max_frame`` caps total_len before anything else is read.
    Stricter than Slurm in two places: bytes after ``body_length`` are refused
    (Slurm ignores them, but they are not covered by the body hash), and so is
    a packstr with a NUL inside it (C would see a shorter string).
    Raises a :class:`~slurmauth_fast.errors.FrameError` or
    :class:`~slurmauth_fast.errors.PackError` subclass; the message names the
    offset of the field that failed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadArgumentError(f"frame must be bytes-like, not {type(data).__name__}")
    view = memoryview(data).cast("B")
    if (versions is DEFAULT_VERSIONS and max_frame == MAX_FRAME and length_prefix is True
            and slurmdbd is False):
        lo, hi = DEFAULT_VERSIONS
        opts = _default_opts()
    else:
        lo, hi = _version_range(versions)
        opts = _parse_opts(lo, hi, int(max_frame), bool(length_prefix), bool(slurmdbd))
    f, fbuf = _frame_struct()
    rc = lib.sa_rpc_parse(data if type(data) is bytes else ffi.from_buffer(view), len(view), opts, f)
    if rc:
        where = f" at offset {f.err_off}" if f.err_off else ""
        if rc == lib.SA_E_RPC_VERSION:
            where += f" (version {f.version:#06x}, accepted {lo:#06x}..{hi:#06x})"
        raise error_for_status(rc, "RPC frame" + where)

    return _frame_from(data, view, f, fbuf)


AddrLike = Union[OrigAddr, Tuple[str, int]]


def _set_addr(msg: Any, keep: list, orig_addr: Optional[AddrLike]) -> None:
    if orig_addr is None:
        return
    if isinstance(orig_addr, tuple) and len(orig_addr) == 2 and isinstance(orig_addr[0], str):
        host, port = orig_addr
        orig_addr = OrigAddr(AF_INET6 if ":" in host else AF_INET, host, port)
    if not isinstance(orig_addr, OrigAddr):
        raise BadArgumentError("orig_addr must be an OrigAddr or a (host, port) tuple")
    if not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (orig_addr.family, orig_addr.port)):
        raise BadArgumentError("orig_addr family and port must be uint16")
    msg.addr_family = orig_addr.family
    if orig_addr.family not in (AF_INET, AF_INET6):
        return
    try:
        ip = ipaddress.ip_address(orig_addr.host or "")
    except ValueError:
        raise BadArgumentError(f"orig_addr host {orig_addr.host!r} is not an IP address") from None
    if (ip.version == 6) != (orig_addr.family == AF_INET6):
        raise BadArgumentError("orig_addr host does not match its family")
    msg.addr_port = _swap16(orig_addr.port)
    if ip.version == 4:
        msg.addr_v4 = int.from_bytes(ip.packed, "little")
    else:
        keep.append(ffi.from_buffer(ip.packed))
        msg.addr_v6 = keep[-1]


def _set_str(msg: Any, keep: list, field: str, value: Optional[StrLike]) -> None:
    b = str_bytes(value, field)
    if b is not None:
        keep.append(ffi.from_buffer(b))
        setattr(msg, field, keep[-1])
        setattr(msg, field + "_len", len(b))


def pack_frame(msg_type: int, body: BytesLike, *, credential: Optional[StrLike] = None,
               plugin: int = AUTH_SLURM, username: Optional[StrLike] = None, flags: int = 0,
               version: int = PROTOCOL_VERSION, forward: Optional[Forward] = None,
               orig_addr: Optional[AddrLike] = None, length_prefix: bool = True) -> bytes:
    """Pack one RPC the way Slurm's sender does (ret_cnt is always 0).

    ``credential`` is the token (auth/slurm, auth/jwt) or munge credential
    string; ``username`` is auth/jwt's packed user name. With the NO_AUTH_CRED
    flag no auth section is written; with SLURMDBD_CONNECTION the msg_type
    prefix is. A ``forward`` with ``net_cred`` needs the PACK_ADDRS flag."""
    for name, v in (("msg_type", msg_type), ("flags", flags), ("version", version)):
        if not isinstance(v, int) or not 0 <= v <= 0xFFFF:
            raise BadArgumentError(f"{name} {v!r} is not a uint16")
    no_auth = bool(flags & NO_AUTH_CRED)
    if not no_auth and plugin not in _AUTH_PLUGINS:
        raise BadArgumentError(f"unknown auth plugin {plugin!r}")
    if (no_auth or plugin == AUTH_NONE) and credential is not None:
        raise BadArgumentError("a credential needs an auth section with plugin 101-103")
    if username is not None and (no_auth or plugin != AUTH_JWT):
        raise BadArgumentError("username is packed only by auth/jwt (plugin 102)")

    if not isinstance(body, (bytes, bytearray, memoryview)):
        raise BadArgumentError(f"body must be bytes-like, not {type(body).__name__}")
    keep: list = []   # cdata buffers the C struct points into, alive until packed
    m = ffi.new("sa_rpc_msg *")
    m.version, m.flags, m.msg_type = version, flags, msg_type
    m.auth_plugin = plugin
    m.length_prefix = 1 if length_prefix else 0
    if forward is not None:
        for name, v, top in (("cnt", forward.cnt, 0xFFFF), ("timeout", forward.timeout, 0xFFFFFFFF),
                             ("tree_width", forward.tree_width, 0xFFFF),
                             ("tree_depth", forward.tree_depth, 0xFFFF)):
            if not isinstance(v, int) or not (1 if name == "cnt" else 0) <= v <= top:
                raise BadArgumentError(f"forward.{name} {v!r} is out of range")
        if forward.net_cred is not None and not flags & PACK_ADDRS:
            raise BadArgumentError("forward.net_cred is packed only with the PACK_ADDRS flag")
        m.forward_cnt = forward.cnt
        m.fwd_timeout, m.fwd_tree_width, m.fwd_tree_depth = (
            forward.timeout, forward.tree_width, forward.tree_depth)
        _set_str(m, keep, "fwd_nodelist", forward.nodelist)
        _set_str(m, keep, "fwd_net_cred", forward.net_cred)
    _set_addr(m, keep, orig_addr)
    _set_str(m, keep, "cred", credential)
    _set_str(m, keep, "user", username)
    b = ffi.from_buffer(body)
    m.body, m.body_len = b, len(b)

    need = ffi.new("size_t *")
    raise_for_status(lib.sa_rpc_pack(m, ffi.NULL, 0, need), "pack RPC frame")
    out = ffi.new("uint8_t[]", need[0])
    raise_for_status(lib.sa_rpc_pack(m, out, need[0], need), "pack RPC frame")
    return ffi.buffer(out, need[0])[:]


@dataclass(frozen=True)
class VerifiedRpc:
    """A frame whose credential verified and whose body hash matched."""

    frame: RpcFrame
    credential: "Credential"


_PLUGIN_NAMES = {AUTH_NONE: "auth/none", AUTH_MUNGE: "auth/munge", AUTH_JWT: "auth/jwt",
                 AUTH_SLURM: "auth/slurm"}


def auth_credential(frame: RpcFrame, plugin: int) -> bytes:
    """The credential in ``frame``'s auth section, which must be ``plugin``'s:
    a frame without an auth section (NO_AUTH_CRED) or with a NULL credential
    raises :class:`MissingCredentialError`, another plugin's section
    :class:`UnsupportedAuthPluginError`."""
    name = _PLUGIN_NAMES.get(plugin, str(plugin))
    if frame.auth_plugin is None:
        raise MissingCredentialError("RPC has no auth section (NO_AUTH_CRED)")
    if frame.auth_plugin != plugin:
        raise UnsupportedAuthPluginError(f"auth plugin {frame.auth_plugin} is not {name} ({plugin})")
    if frame.auth_cred is None:
        raise MissingCredentialError(f"{name} section carries a NULL credential")
    return frame.auth_cred


def verify_rpc(frame: Union[RpcFrame, BytesLike], verifier: "Verifier", *,
               block_null_hash: bool = False, block_zero_hash: bool = False,
               length_prefix: bool = True, now: Optional[int] = None,
               versions: Iterable[int] = DEFAULT_VERSIONS,
               max_frame: int = MAX_FRAME) -> VerifiedRpc:
    """Authenticate one RPC as slurmctld does for auth/slurm (plugin 103).

    ``frame`` is an :class:`RpcFrame` or the raw bytes (parsed with
    :func:`parse_frame` and ``length_prefix``, ``versions``, ``max_frame``). The token is verified by
    ``verifier`` (a :class:`~slurmauth_fast.tokens.Verifier`: signature, expiry,
    ruid against the verifier's uid, context "auth" or "sack"), then its
    payload must bind this body and msg_type (:func:`check_body_hash`, with
    Slurm's block_null_hash / block_zero_hash policy).

    Raw bytes with the default framing go through one C call
    (``sa_verify_frame_slurm``: parse, token, body hash); when that refuses
    the frame, the steps are redone one by one to raise the precise error."""
    if type(frame) is bytes and length_prefix is True and (
            now is None or (type(now) is int and now >= 0)):
        # the fast path, inline (a call alone is ~3% of it)
        if not _fast:
            _fast_init()
        try:
            buf, ptr, cap, small = verifier._tls.s
        except AttributeError:
            buf, ptr, cap, small = verifier._scratch(0)
        if len(frame) > small:
            buf, ptr, cap, small = verifier._scratch(lib.sc_scratch_need(len(frame)))
        try:
            f, fbuf = _tls.f
        except AttributeError:
            f, fbuf = _frame_struct()
        state = verifier.keyring._state   # one snapshot: the key index refers to it
        opts, credential = _fast
        if versions is not DEFAULT_VERSIONS or max_frame != MAX_FRAME:
            lo, hi = _version_range(versions)
            opts = _parse_opts(lo, hi, int(max_frame), True, False)
        if not _verify_frame_slurm(
                frame, len(frame), opts, f, state.ks, verifier._policy,
                -1 if now is None else now,
                (_BH_NULL if block_null_hash else 0) | (_BH_ZERO if block_zero_hash else 0),
                ptr, cap):
            try:
                cred = credential(buf, 0, state)
            except CredentialError:
                pass                      # a malformed "id" object: the steps below report it
            else:
                done = _new(VerifiedRpc)
                _set(done, "__dict__", {"frame": _frame_from(frame, memoryview(frame), f, fbuf),
                                        "credential": cred})
                return done
        # refused: redo it step by step to raise the precise error
    if not isinstance(frame, RpcFrame):
        frame = parse_frame(frame, length_prefix=length_prefix, versions=versions,
                            max_frame=max_frame)
    cred = verifier.verify(auth_credential(frame, AUTH_SLURM), now=now)
    check_body_hash(cred.payload, frame.body, frame.msg_type,
                    block_null_hash=block_null_hash, block_zero_hash=block_zero_hash)
    return VerifiedRpc(frame, cred)


_BH_NULL = lib.SA_BH_BLOCK_NULL_HASH
_BH_ZERO = lib.SA_BH_BLOCK_ZERO_HASH
_verify_frame_slurm = lib.sa_verify_frame_slurm
_fast: list = []   # [default parse options, tokens._credential], filled on first use


def _fast_init() -> None:
    from .tokens import _credential   # the C result reader shared with Verifier.verify
    _fast[:] = [_default_opts(), _credential]


__all__ = [
    "AF_INET", "AF_INET6", "AF_UNSPEC", "AUTH_JWT", "AUTH_MUNGE", "AUTH_NONE", "AUTH_SLURM",
    "CTLD_QUEUE_PROCESSING", "DEFAULT_VERSIONS", "GLOBAL_AUTH_KEY", "HASH_K12", "HASH_NONE",
    "HASH_SHA3", "MAX_FRAME", "MSG_KEEP_BUFFER", "NO_AUTH_CRED", "PACK_ADDRS",
    "PROTOCOL_VERSION", "REQUEST_PING", "RESPONSE_SLURM_RC", "SLURMDBD_CONNECTION",
    "USE_BCAST_NETWORK", "Forward", "OrigAddr", "RpcFrame", "VerifiedRpc", "auth_credential", "body_hash_payload",
    "check_body_hash", "pack_frame", "parse_frame", "supported_versions", "verify_rpc",
]
