"""Slurm RPC frames: parse and pack what a controller receives and sends.

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

Verifying a frame's credential and body hash is
:mod:`slurmauth_fast.frame_verifier`; :mod:`slurmauth_fast.rpc` has both under one name.
"""
from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any, Iterable, Optional, Tuple, Union

from ._bindings import frame as _fr
from ._bindings.frame import (
    AF_INET, AF_INET6, AF_UNSPEC, AUTH_JWT, AUTH_MUNGE, AUTH_NONE, AUTH_SLURM,
    CTLD_QUEUE_PROCESSING, GLOBAL_AUTH_KEY, MSG_KEEP_BUFFER, NO_AUTH_CRED, PACK_ADDRS,
    SLURMDBD_CONNECTION, USE_BCAST_NETWORK,
)
from ._bindings.status import error_for_status
from .bodyhash import HASH_K12, HASH_NONE, HASH_SHA3, body_hash_payload, check_body_hash
from .exceptions import (BadArgumentError, BadArgumentTypeError, MissingCredentialError,
                         UnsupportedAuthPluginError)
from .pack import BytesLike, StrLike, bytes_str, str_bytes

#: Slurm 26.05's protocol version (major << 8); 23.11 = 0x2800 ... 26.11 = 0x2E00.
PROTOCOL_VERSION = _fr.PROTOCOL_VERSION


def supported_versions(current: int = PROTOCOL_VERSION) -> Tuple[int, int]:
    """The (oldest, newest) protocol versions a daemon of version ``current``
    accepts: its own and the three releases before it."""
    if not isinstance(current, int) or not _fr.OLDEST_DELTA <= current <= 0xFFFF:
        raise BadArgumentError(f"protocol version {current!r} is not valid")
    return (current - _fr.OLDEST_DELTA, current)


#: Accepted by default: 24.11 (0x2A00) through 26.05 (0x2D00).
DEFAULT_VERSIONS = supported_versions()

#: Slurm's own cap on one message (MAX_MSG_SIZE, 1 GiB): :func:`parse_frame`'s
#: default (parsing holds no memory in proportion to the frame).
MAX_FRAME = 1024 * 1024 * 1024
#: The default cap of verification (:func:`~slurmauth_fast.rpc.verify_rpc`,
#: :class:`~slurmauth_fast.rpc.FrameVerifier`), as the proxy's: 64 MiB. Slurm's
#: 1 GiB is too generous for a library default; pass ``max_frame=`` for more.
VERIFY_MAX_FRAME = 64 * 1024 * 1024

_AUTH_PLUGINS = (AUTH_NONE, AUTH_MUNGE, AUTH_JWT, AUTH_SLURM)

# message types used here
REQUEST_PING = 1008
RESPONSE_SLURM_RC = 8001


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
    fam, v4, v6_off, port = _fr.address(f)
    if fam == AF_UNSPEC:
        return None
    if fam == AF_INET:
        host = socket.inet_ntop(socket.AF_INET, v4.to_bytes(4, "little"))
        return OrigAddr(fam, host, _swap16(port))
    if fam == AF_INET6:
        return OrigAddr(fam, str(ipaddress.IPv6Address(bytes(view[v6_off:v6_off + 16]))),
                        _swap16(port))
    return OrigAddr(fam)


def _str_view(view: memoryview, off: int, wire_len: int) -> Optional[bytes]:
    return bytes(view[off:off + wire_len - 1]) if wire_len else None


def parse_options(versions: Iterable[int] = DEFAULT_VERSIONS, max_frame: int = MAX_FRAME,
                  length_prefix: bool = True, slurmdbd: bool = False) -> Tuple[Any, int, int]:
    """The C parse options for these arguments (built once per distinct set)
    and the accepted version range (lo, hi)."""
    lo, hi = _version_range(versions)
    return _fr.parse_opts(lo, hi, int(max_frame), bool(length_prefix), bool(slurmdbd)), lo, hi


def _version_range(versions: Iterable[int]) -> Tuple[int, int]:
    vs = versions if versions is DEFAULT_VERSIONS else tuple(versions)
    if not vs or not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in vs):
        raise BadArgumentError("versions must be uint16 protocol versions")
    return min(vs), max(vs)


_DEFAULT_OPTS = parse_options()
_FRAME = _fr.FRAME
_FORWARD = _fr.FORWARD
_new = object.__new__
_set = object.__setattr__


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
    version). ``max_frame`` caps total_len before anything else is read
    (default :data:`MAX_FRAME`, Slurm's 1 GiB; verification defaults to
    :data:`VERIFY_MAX_FRAME`, 64 MiB).
    Stricter than Slurm in two places: bytes after ``body_length`` are refused
    (Slurm ignores them, but they are not covered by the body hash), and so is
    a packstr with a NUL inside it (C would see a shorter string).
    Raises a :class:`~slurmauth_fast.errors.FrameError` or
    :class:`~slurmauth_fast.errors.PackError` subclass; the message names the
    offset of the field that failed."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadArgumentTypeError(f"frame must be bytes-like, not {type(data).__name__}")
    view = memoryview(data).cast("B")
    if (versions is DEFAULT_VERSIONS and max_frame == MAX_FRAME and length_prefix is True
            and slurmdbd is False):
        opts, lo, hi = _DEFAULT_OPTS
    else:
        opts, lo, hi = parse_options(versions, max_frame, length_prefix, slurmdbd)
    try:
        f, fbuf, _ = _fr.local.f
    except AttributeError:
        f, fbuf, _ = _fr.frame_struct()
    rc = _fr.parse(data if type(data) is bytes else _fr.c_bytes(view), len(view), opts, f)
    if rc:
        raise frame_error(rc, f, lo, hi)
    return _frame_from(data, view, f, fbuf)


def frame_error(rc: int, f: Any, lo: int, hi: int) -> Exception:
    """The exception for a frame sa_rpc_parse refused with ``rc`` (accepted versions lo..hi)."""
    err_off, version = _fr.parse_failure(f)
    where = f" at offset {err_off}" if err_off else ""
    if rc == _fr.E_VERSION:
        where += f" (version {version:#06x}, accepted {lo:#06x}..{hi:#06x})"
    return error_for_status(rc, "RPC frame" + where)


AddrLike = Union[OrigAddr, Tuple[str, int]]


def _addr(orig_addr: Optional[AddrLike]) -> Optional[Tuple[int, int, int, bytes]]:
    """(family, port as packed, v4 as packed, v6 bytes) of an orig_addr argument."""
    if orig_addr is None:
        return None
    if isinstance(orig_addr, tuple) and len(orig_addr) == 2 and isinstance(orig_addr[0], str):
        host, port = orig_addr
        orig_addr = OrigAddr(AF_INET6 if ":" in host else AF_INET, host, port)
    if not isinstance(orig_addr, OrigAddr):
        raise BadArgumentTypeError("orig_addr must be an OrigAddr or a (host, port) tuple")
    if not all(isinstance(v, int) and 0 <= v <= 0xFFFF for v in (orig_addr.family, orig_addr.port)):
        raise BadArgumentError("orig_addr family and port must be uint16")
    if orig_addr.family not in (AF_INET, AF_INET6):
        return (orig_addr.family, 0, 0, b"")
    try:
        ip = ipaddress.ip_address(orig_addr.host or "")
    except ValueError:
        raise BadArgumentError(f"orig_addr host {orig_addr.host!r} is not an IP address") from None
    if (ip.version == 6) != (orig_addr.family == AF_INET6):
        raise BadArgumentError("orig_addr host does not match its family")
    if ip.version == 4:
        return (orig_addr.family, _swap16(orig_addr.port), int.from_bytes(ip.packed, "little"), b"")
    return (orig_addr.family, _swap16(orig_addr.port), 0, ip.packed)


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
        raise BadArgumentTypeError(f"body must be bytes-like, not {type(body).__name__}")
    fwd = None
    strings = {}
    if forward is not None:
        for name, v, top in (("cnt", forward.cnt, 0xFFFF), ("timeout", forward.timeout, 0xFFFFFFFF),
                             ("tree_width", forward.tree_width, 0xFFFF),
                             ("tree_depth", forward.tree_depth, 0xFFFF)):
            if not isinstance(v, int) or not (1 if name == "cnt" else 0) <= v <= top:
                raise BadArgumentError(f"forward.{name} {v!r} is out of range")
        if forward.net_cred is not None and not flags & PACK_ADDRS:
            raise BadArgumentError("forward.net_cred is packed only with the PACK_ADDRS flag")
        fwd = (forward.cnt, forward.timeout, forward.tree_width, forward.tree_depth)
        strings["fwd_nodelist"] = str_bytes(forward.nodelist, "fwd_nodelist")
        strings["fwd_net_cred"] = str_bytes(forward.net_cred, "fwd_net_cred")
    addr = _addr(orig_addr)
    strings["cred"] = str_bytes(credential, "cred")
    strings["user"] = str_bytes(username, "user")
    return _fr.pack(version=version, flags=flags, msg_type=msg_type, plugin=plugin,
                    length_prefix=length_prefix, forward=fwd, addr=addr, strings=strings, body=body)


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


__all__ = [
    "AF_INET", "AF_INET6", "AF_UNSPEC", "AUTH_JWT", "AUTH_MUNGE", "AUTH_NONE", "AUTH_SLURM",
    "CTLD_QUEUE_PROCESSING", "DEFAULT_VERSIONS", "GLOBAL_AUTH_KEY", "HASH_K12", "HASH_NONE",
    "HASH_SHA3", "MAX_FRAME", "MSG_KEEP_BUFFER", "NO_AUTH_CRED", "PACK_ADDRS",
    "PROTOCOL_VERSION", "REQUEST_PING", "RESPONSE_SLURM_RC", "SLURMDBD_CONNECTION",
    "USE_BCAST_NETWORK", "VERIFY_MAX_FRAME", "Forward", "OrigAddr", "RpcFrame", "auth_credential",
    "body_hash_payload", "check_body_hash", "frame_error", "pack_frame", "parse_frame", "parse_options",
    "supported_versions",
]
