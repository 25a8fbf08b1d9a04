"""The SACK kiosk's wire format and socket paths (see :mod:`slurmauth_fast.sack`),
over Slurm's pack format (:mod:`slurmauth_fast.pack`)."""
from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from typing import List, Mapping, Optional, Tuple, Union

from ..credential import PROTOCOL_VERSION
from ..exceptions import (BadArgumentError, BadArgumentTypeError, EmbeddedNulError, PackError,
                          PackLimitError, StringNulError, UnpackError)
from ..jws import DEFAULT_MAX_TOKEN
from ..pack import Packer, Unpacker

SACK_CREATE = 64001
SACK_VERIFY = 64002

#: Bytes before the body: uint16 version, uint32 length, uint32 rpc.
HEADER_LEN = 10
#: The smallest valid length field: the length and rpc fields themselves.
MIN_LENGTH = 8
#: Slurm refuses packmem/packstr lengths over 1 GiB on both sides.
PACK_MAX_LEN = 1024 * 1024 * 1024

#: Largest request the kiosk reads (version to end). A SACK_CREATE carries a
#: 33-byte body hash; a SACK_VERIFY a token of at most DEFAULT_MAX_TOKEN bytes.
DEFAULT_MAX_REQUEST = 1024 * 1024
#: Seconds a connection may take for its whole exchange (Slurm's default
#: MessageTimeout is 10 s).
DEFAULT_TIMEOUT = 10.0
#: Seconds a connection may take to send its whole request (a few dozen
#: bytes): a client that connects and sits loses its slot after this.
DEFAULT_READ_TIMEOUT = 2.0
#: Connections served at once; more wait in the listen backlog.
DEFAULT_MAX_CONNECTIONS = 1024
#: Connections one peer uid may hold at once (root and SlurmUser included,
#: unless given their own cap); one more is closed at once. Never more than
#: half of the server's ``max_connections``.
DEFAULT_MAX_CONNECTIONS_PER_UID = 64
#: Seconds between two log lines of one class (unexpected rpc, over the uid
#: cap, ...); the lines in between are counted.
DEFAULT_LOG_INTERVAL = 10.0
#: Largest SACK_CREATE reply the client accepts (packstr of a token).
MAX_REPLY = DEFAULT_MAX_TOKEN + 1

#: Where Slurm's daemons put their kiosk socket.
SACKD_SOCKET = "/run/slurm/sack.socket"
SLURMCTLD_SOCKET = "/run/slurmctld/sack.socket"
SLURMDBD_SOCKET = "/run/slurmdbd/sack.socket"
SOCKET_NAME = "sack.socket"
#: Server roles, each with Slurm's socket path for it.
SERVER_ROLES = ("sackd", "slurmctld", "slurmdbd")

_UINT32_MAX = 0xFFFFFFFF

BytesLike = Union[bytes, bytearray, memoryview]

# the kiosk's hot path decodes and encodes with struct (the same bytes as Packer/Unpacker)
_U32 = struct.Struct(">I")
_HEADER = struct.Struct(">HII")
_U32_U32 = struct.Struct(">II")


# --- wire -------------------------------------------------------------------

def _pack_str(text: Union[str, bytes]) -> bytes:
    """Slurm's packstr of an ASCII string without NUL."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except (UnicodeEncodeError, TypeError):
        raise BadArgumentError("a packstr string must be ASCII str or bytes") from None
    if b"\0" in raw:
        raise BadArgumentError("a packstr string cannot contain NUL")
    if len(raw) >= PACK_MAX_LEN:  # the packer's own limit error
        return Packer(len(raw) + 5).packstr(raw).getvalue()
    return _U32.pack(len(raw) + 1) + raw + b"\0"  # packstr: the length counts the NUL


def _unpack_u32(u: Unpacker) -> int:
    try:
        return u.unpack32()
    except PackError:
        raise UnpackError("truncated uint32") from None


def _unpack_mem(u: Unpacker) -> bytes:
    """Slurm's unpackmem: a length past the end (or over 1 GiB) is an error."""
    if u.remaining < 4:
        raise UnpackError("truncated uint32")
    try:
        view = u.unpackmem()
    except PackLimitError:
        raise UnpackError("packmem length exceeds 1 GiB") from None
    except PackError:
        raise UnpackError("packmem length runs past the end of the buffer") from None
    return b"" if view is None else bytes(view)


def _unpack_str(u: Unpacker) -> Optional[bytes]:
    """Slurm's unpackstr: length 0 is NULL; otherwise the last byte must be NUL.
    Returns the string without its NUL; a NUL inside it is refused too."""
    if u.remaining < 4:
        raise UnpackError("truncated uint32")
    try:
        return u.unpackstr()
    except PackLimitError:
        raise UnpackError("packmem length exceeds 1 GiB") from None
    except StringNulError:
        raise UnpackError("packstr is not NUL-terminated") from None
    except EmbeddedNulError:
        raise UnpackError("packstr contains an embedded NUL") from None
    except PackError:
        raise UnpackError("packmem length runs past the end of the buffer") from None


def unpack_token_reply(reply: BytesLike) -> Optional[bytes]:
    """A SACK_CREATE reply (packstr token) without its NUL; None for a NULL string."""
    u = Unpacker(reply)
    token = _unpack_str(u)
    if u.remaining:
        raise UnpackError(f"{u.remaining} trailing bytes after the SACK_CREATE reply")
    return token


def encode_request(rpc: int, body: BytesLike, *, version: int = PROTOCOL_VERSION) -> bytes:
    """Frame a kiosk request: version, length (from itself to the end), rpc, body."""
    if not 0 <= version <= 0xFFFF:
        raise BadArgumentError(f"protocol version {version} is not a uint16")
    if MIN_LENGTH + len(body) > _UINT32_MAX:
        raise BadArgumentError("request body too large")
    p = Packer(HEADER_LEN + len(body)).pack16(version).pack32(MIN_LENGTH + len(body)).pack32(rpc)
    return p.getvalue() + bytes(body)


def encode_create_request(r_uid: int, data: BytesLike = b"", *, version: int = PROTOCOL_VERSION) -> bytes:
    """A SACK_CREATE request: ``uint32 r_uid, packmem data``."""
    _check_uid(r_uid, "r_uid")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadArgumentTypeError(f"data must be bytes, not {type(data).__name__}")
    if len(data) > PACK_MAX_LEN:
        raise BadArgumentError(f"packmem of {len(data)} bytes exceeds Slurm's 1 GiB limit")
    body = Packer(8 + len(data)).pack32(r_uid).packmem(data).getvalue()
    return encode_request(SACK_CREATE, body, version=version)


def encode_verify_request(token: Union[str, bytes], *, version: int = PROTOCOL_VERSION) -> bytes:
    """A SACK_VERIFY request: ``packstr token``."""
    return encode_request(SACK_VERIFY, _pack_str(token), version=version)


def encode_token_reply(token: Union[str, bytes]) -> bytes:
    """The SACK_CREATE reply: ``packstr token``."""
    return _pack_str(token)


def encode_verify_reply(rc: int = 0) -> bytes:
    """The SACK_VERIFY reply: ``uint32 rc`` (0: verified)."""
    return Packer(4).pack32(rc).getvalue()


def decode_header(buf: BytesLike) -> Tuple[int, int, int]:
    """(version, length, rpc) of a request's first HEADER_LEN bytes."""
    version, length, rpc = _HEADER.unpack_from(buf)
    return version, length, rpc


def decode_u32(buf: BytesLike) -> int:
    """A big-endian uint32 (a reply's length or rc) from 4 bytes."""
    (value,) = _U32.unpack_from(buf)
    return value


@dataclass(frozen=True)
class CreateRequest:
    """A decoded SACK_CREATE body."""

    r_uid: int
    data: bytes


def decode_create_body(body: BytesLike) -> CreateRequest:
    """``uint32 r_uid, packmem data``; the body must end exactly there."""
    if len(body) >= 8:  # the well-formed body, at once; anything else through the Unpacker
        r_uid, n = _U32_U32.unpack_from(body)
        if 8 + n == len(body) and n <= PACK_MAX_LEN:
            return CreateRequest(r_uid, bytes(body[8:]))
    u = Unpacker(body)
    r_uid = _unpack_u32(u)
    data = _unpack_mem(u)
    if u.remaining:
        raise UnpackError(f"{u.remaining} trailing bytes after the SACK_CREATE body")
    return CreateRequest(r_uid, data)


def decode_verify_body(body: BytesLike) -> bytes:
    """``packstr token``; the body must end exactly there and the token be non-empty."""
    u = Unpacker(body)
    token = _unpack_str(u)
    if u.remaining:
        raise UnpackError(f"{u.remaining} trailing bytes after the SACK_VERIFY body")
    if not token:
        raise UnpackError("SACK_VERIFY carries no token")
    return token


def _check_uid(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _UINT32_MAX:
        raise BadArgumentError(f"{what} must be an integer in 0..4294967295")


# --- socket paths -----------------------------------------------------------

def server_socket_path(path: Optional[str] = None, *, role: str = "sackd",
                       env: Optional[Mapping[str, str]] = None) -> str:
    """The socket a kiosk listens on, chosen like Slurm.

    An explicit ``path`` wins. Otherwise by ``role``: slurmctld uses
    /run/slurmctld/sack.socket, slurmdbd /run/slurmdbd/sack.socket, and sackd
    $RUNTIME_DIRECTORY/sack.socket (systemd's RuntimeDirectory=) or else
    /run/slurm/sack.socket."""
    if path:
        return os.fspath(path)
    if role == "slurmctld":
        return SLURMCTLD_SOCKET
    if role == "slurmdbd":
        return SLURMDBD_SOCKET
    if role != "sackd":
        raise BadArgumentError(f"unknown kiosk role {role!r} (one of {', '.join(SERVER_ROLES)})")
    runtime_dir = (os.environ if env is None else env).get("RUNTIME_DIRECTORY")
    if runtime_dir:
        # systemd separates several RuntimeDirectory= entries with ':'; Slurm
        # refuses anything but one directory under /run, we require one absolute path.
        if not os.path.isabs(runtime_dir) or ":" in runtime_dir:
            raise BadArgumentError(f"invalid RUNTIME_DIRECTORY={runtime_dir!r}: need one absolute directory")
        return os.path.join(runtime_dir, SOCKET_NAME)
    return SACKD_SOCKET


def client_socket_paths(cluster: Optional[str] = None, *,
                        env: Optional[Mapping[str, str]] = None) -> List[str]:
    """The sockets a client tries, in Slurm's order: $SLURM_SACK_SOCKET alone
    when set; else /run/slurm-<cluster>/sack.socket (with a cluster name), then
    /run/slurm, /run/slurmctld and /run/slurmdbd's sack.socket."""
    explicit = (os.environ if env is None else env).get("SLURM_SACK_SOCKET")
    if explicit:
        return [explicit]
    paths = [f"/run/slurm-{cluster}/{SOCKET_NAME}"] if cluster else []
    return paths + [SACKD_SOCKET, SLURMCTLD_SOCKET, SLURMDBD_SOCKET]


__all__ = [
    "DEFAULT_LOG_INTERVAL", "DEFAULT_MAX_CONNECTIONS", "DEFAULT_MAX_CONNECTIONS_PER_UID",
    "DEFAULT_MAX_REQUEST", "DEFAULT_READ_TIMEOUT", "DEFAULT_TIMEOUT", "HEADER_LEN", "MAX_REPLY",
    "MIN_LENGTH", "PACK_MAX_LEN", "SACKD_SOCKET", "SACK_CREATE", "SACK_VERIFY", "SERVER_ROLES",
    "SLURMCTLD_SOCKET", "SLURMDBD_SOCKET", "SOCKET_NAME", "BytesLike", "CreateRequest",
    "client_socket_paths", "decode_create_body", "decode_header", "decode_u32",
    "decode_verify_body", "encode_create_request", "encode_request", "encode_token_reply",
    "encode_verify_reply", "encode_verify_request", "server_socket_path", "unpack_token_reply",
]
