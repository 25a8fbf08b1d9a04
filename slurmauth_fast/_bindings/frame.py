"""RPC frames (``csrc/rpc.h``) and the fused frame verifier
(``csrc/verify_frame.h``): parse options, the per-thread ``sa_rpc_frame``
and verdict, reading a parsed frame, packing one."""
from __future__ import annotations

import functools
import struct
import threading
from typing import Any, Dict, Optional, Tuple, Union

from ._ffi import ffi, lib
from ._layout import fields_format
from .status import raise_for_status

BytesLike = Union[bytes, bytearray, memoryview]

PROTOCOL_VERSION = lib.SA_PROTOCOL_VERSION
OLDEST_DELTA = lib.SA_PROTOCOL_OLDEST_DELTA

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

AF_UNSPEC = lib.SA_AF_UNSPEC
AF_INET = lib.SA_AF_INET
AF_INET6 = lib.SA_AF_INET6

E_VERSION = lib.SA_E_RPC_VERSION
E_PLUGIN = lib.SA_E_FRAME_PLUGIN
STAGE_PARSE = lib.SA_STAGE_PARSE
STAGE_AUTH = lib.SA_STAGE_AUTH
STAGE_TOKEN = lib.SA_STAGE_TOKEN
STAGE_BODY_HASH = lib.SA_STAGE_BODY_HASH


@functools.lru_cache(maxsize=64)
def parse_opts(lo: int, hi: int, max_frame: int, length_prefix: bool, slurmdbd: bool) -> Any:
    """The ``sa_rpc_opts *`` for one configuration (built once, read-only after)."""
    return ffi.new("sa_rpc_opts *", {
        "min_version": lo, "max_version": hi, "max_frame": min(max(max_frame, 0), 0xFFFFFFFF),
        "length_prefix": 1 if length_prefix else 0, "slurmdbd": 1 if slurmdbd else 0,
    })


# ---- the per-thread frame struct and verdict --------------------------------------

#: ``.f``: (sa_rpc_frame *, a buffer over it, sa_frame_verdict *), one per thread
local = threading.local()


def frame_struct() -> Tuple[Any, Any, Any]:
    """This thread's sa_rpc_frame, a buffer over it and an sa_frame_verdict
    (reused: parse writes every field it reports). Callers read ``local.f``
    first and call this when it is missing."""
    try:
        return local.f  # type: ignore[no-any-return]
    except AttributeError:
        f = ffi.new("sa_rpc_frame *")
        local.f = (f, ffi.buffer(f), ffi.new("sa_frame_verdict *"))
        return local.f  # type: ignore[no-any-return]


def c_bytes(data: BytesLike) -> Any:
    """What a C entry point taking ``const uint8_t *`` accepts for ``data``."""
    return data if type(data) is bytes else ffi.from_buffer(data)


#: sa_rpc_parse(data, len, opts, f) -> status
parse: Any = lib.sa_rpc_parse
#: sa_verify_frame_slurm(data, len, opts, f, keyset, policy, now, bh_flags, scratch, cap, verdict)
verify_frame_slurm: Any = lib.sa_verify_frame_slurm
#: sa_verify_frame(data, len, opts, f, keyset, policy, jwt_policy, now, bh_flags, scratch, cap,
#: verdict): auth/slurm and auth/jwt frames (a NULL policy: that plugin is not served)
verify_frame: Any = lib.sa_verify_frame
NULL: Any = ffi.NULL
E_NULL_CRED: int = lib.SA_E_FRAME_NULL_CRED


def parse_failure(f: Any) -> Tuple[int, int]:
    """(offset of the field that failed, the version read) after a failed parse."""
    return int(f.err_off), int(f.version)


def verdict(v: Any) -> Tuple[int, int, int]:
    """(stage, offset, claim) of a verdict."""
    return int(v.stage), int(v.offset), int(v.claim)


def auth_plugin(f: Any) -> int:
    return int(f.auth_plugin)


# sa_rpc_frame as Python reads it: one unpack_from of the fields every frame
# has, and one of the forward fields when the frame has a forward section.
FRAME = struct.Struct("=" + fields_format(
    "sa_rpc_frame", "total_len", "header_off", "version", "flags", "msg_type", "body_length",
    "forward_cnt", "ret_cnt", "addr_family", "auth_off", "has_auth", "auth_plugin",
    "cred_off", "cred_len", "user_off", "user_len", "body_off")[0])
FORWARD = struct.Struct("=" + fields_format(
    "sa_rpc_frame", "fwd_nodelist_off", "fwd_nodelist_len", "fwd_timeout", "fwd_tree_width",
    "fwd_has_net_cred", "fwd_net_cred_off", "fwd_net_cred_len", "fwd_tree_depth")[0])


def address(f: Any) -> Tuple[int, int, int, int]:
    """(family, the uint32 v4 address as packed, offset of the 16 v6 bytes, port as packed)."""
    return int(f.addr_family), int(f.addr_v4), int(f.addr_v6_off), int(f.addr_port)


# ---- packing -------------------------------------------------------------------

def pack(*, version: int, flags: int, msg_type: int, plugin: int, length_prefix: bool,
         forward: Optional[Tuple[int, int, int, int]], addr: Optional[Tuple[int, int, int, bytes]],
         strings: Dict[str, Optional[bytes]], body: BytesLike) -> bytes:
    """sa_rpc_pack. ``forward``: (cnt, timeout, tree_width, tree_depth);
    ``addr``: (family, port as packed, v4 as packed, v6 bytes); ``strings``:
    fwd_nodelist, fwd_net_cred, cred, user (None: NULL)."""
    keep: list = []   # cdata buffers the C struct points into, alive until packed
    m = ffi.new("sa_rpc_msg *")
    m.version, m.flags, m.msg_type = version, flags, msg_type
    m.auth_plugin = plugin
    m.length_prefix = 1 if length_prefix else 0
    if forward is not None:
        m.forward_cnt, m.fwd_timeout, m.fwd_tree_width, m.fwd_tree_depth = forward
    if addr is not None:
        family, port, v4, v6 = addr
        m.addr_family = family
        m.addr_port = port
        m.addr_v4 = v4
        if v6:
            keep.append(ffi.from_buffer(v6))
            m.addr_v6 = keep[-1]
    for field, value in strings.items():
        if value is not None:
            keep.append(ffi.from_buffer(value))
            setattr(m, field, keep[-1])
            setattr(m, field + "_len", len(value))
    b = ffi.from_buffer(body)
    m.body, m.body_len = b, len(b)
    need = ffi.new("size_t *")
    raise_for_status(lib.sa_rpc_pack(m, ffi.NULL, 0, need), "pack RPC frame")
    out = ffi.new("uint8_t[]", need[0])
    raise_for_status(lib.sa_rpc_pack(m, out, need[0], need), "pack RPC frame")
    return ffi.buffer(out, need[0])[:]
