"""SACK, Slurm's auth and cred kiosk: the server (a ``sackd``) and its client.

A kiosk listens on a unix stream socket. A local process that has no key
asks it for a credential (``SACK_CREATE``) or asks it to check one
(``SACK_VERIFY``). The kiosk never trusts the request about who is asking: it
reads the peer's uid/gid/pid from the kernel (``SO_PEERCRED``), so a process
only ever gets a credential for its own uid and gid, and verification uses the
asking process's uid as the verifier uid (the credential's ``ruid`` must be
that uid or "anyone").

The wire format (all integers big-endian, one request per connection)::

    uint16 version | uint32 length | uint32 rpc | body
    length counts from the length field itself to the end (only the version
    is outside it)

    SACK_CREATE (64001) body:  uint32 r_uid, packmem data
                        reply: packstr token (uint32 length incl. NUL, token, NUL)
    SACK_VERIFY (64002) body:  packstr token
                        reply: uint32 0

On any failure Slurm's kiosk closes the connection without a reply, and so
does this one. Slurm logs the request's version but does not check it; this
kiosk does the same. It is stricter than Slurm in two places that no real
client reaches: a body must unpack to exactly its declared length (Slurm
ignores trailing bytes) and a token must not contain a NUL.

Concurrency: one thread runs a ``selectors`` (epoll) loop with non-blocking
sockets. No connection can hold it up: every connection has one deadline for
the whole exchange (read, answer, write), the declared length is checked
against the request size cap before any body byte is read, reads never go
past the declared length, replies the peer does not drain are written as the
socket becomes writable, and the number of open connections is capped (new
ones wait in the listen backlog). Signing and verifying run inline on the
loop: tens of microseconds, with the keyring never shared with another
thread, so a reload (SIGHUP) cannot race a signature. With use_client_ids the
passwd/group lookup of the caller (NSS: possibly LDAP or sssd) runs on a small
worker pool instead, so a slow directory service delays only the callers
being looked up; the loop signs once the lookup is done.
"""
from __future__ import annotations

import errno
import logging
import os
import selectors
import signal
import socket
import stat
import struct
import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Deque, Dict, List, Mapping, Optional, Tuple, Union

from .errors import (
    BadArgumentError,
    CredentialError,
    SackConnectError,
    SackCreateRefusedError,
    SackProtocolError,
    SackServerError,
    SackTimeoutError,
    SackVerifyRefusedError,
    SlurmAuthError,
    UnpackError,
)
from .identity import Identity, identity_from_user
from .jws import DEFAULT_MAX_TOKEN
from .keys import SLURM_AUTH_UID_ANY, Keyring
from .credential import PROTOCOL_VERSION, RPC_CONTEXTS, create_credential
from .verifier import Verifier

log = logging.getLogger("slurmauth_fast.sack")

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
#: Connections served at once; more wait in the listen backlog.
DEFAULT_MAX_CONNECTIONS = 1024
#: Largest SACK_CREATE reply the client accepts (packstr of a token).
MAX_REPLY = DEFAULT_MAX_TOKEN + 1

#: Where Slurm's daemons put their kiosk socket.
SACKD_SOCKET = "/run/slurm/sack.socket"
SLURMCTLD_SOCKET = "/run/slurmctld/sack.socket"
SLURMDBD_SOCKET = "/run/slurmdbd/sack.socket"
SOCKET_NAME = "sack.socket"
#: Server roles, each with Slurm's socket path for it.
SERVER_ROLES = ("sackd", "slurmctld", "slurmdbd")

_HDR = struct.Struct(">HII")
_U32 = struct.Struct(">I")
_UCRED = struct.Struct("=iII")  # struct ucred: pid_t pid, uid_t uid, gid_t gid
_UINT32_MAX = 0xFFFFFFFF

BytesLike = Union[bytes, bytearray, memoryview]


# --- wire -------------------------------------------------------------------

def _pack_mem(data: BytesLike) -> bytes:
    """Slurm's packmem: uint32 length then the bytes (length 0 = NULL)."""
    if len(data) > PACK_MAX_LEN:
        raise BadArgumentError(f"packmem of {len(data)} bytes exceeds Slurm's 1 GiB limit")
    return _U32.pack(len(data)) + bytes(data)


def _pack_str(text: Union[str, bytes]) -> bytes:
    """Slurm's packstr: packmem of the string including its terminating NUL."""
    try:
        raw = text.encode("ascii") if isinstance(text, str) else bytes(text)
    except (UnicodeEncodeError, TypeError):
        raise BadArgumentError("a packstr string must be ASCII str or bytes") from None
    if b"\0" in raw:
        raise BadArgumentError("a packstr string cannot contain NUL")
    return _pack_mem(raw + b"\0")


def _unpack_u32(buf: BytesLike, off: int) -> Tuple[int, int]:
    if len(buf) - off < 4:
        raise UnpackError("truncated uint32")
    return _U32.unpack_from(buf, off)[0], off + 4


def _unpack_mem(buf: BytesLike, off: int) -> Tuple[bytes, int]:
    """Slurm's unpackmem: a length past the end (or over 1 GiB) is an error."""
    n, off = _unpack_u32(buf, off)
    if n > PACK_MAX_LEN:
        raise UnpackError(f"packmem length {n} exceeds 1 GiB")
    if n > len(buf) - off:
        raise UnpackError(f"packmem length {n} runs past the end of the buffer")
    return bytes(buf[off:off + n]), off + n


def _unpack_str(buf: BytesLike, off: int) -> Tuple[Optional[bytes], int]:
    """Slurm's unpackstr: length 0 is NULL; otherwise the last byte must be NUL.
    Returns the string without its NUL; a NUL inside it is refused too."""
    raw, off = _unpack_mem(buf, off)
    if not raw:
        return None, off
    if raw[-1] != 0:
        raise UnpackError("packstr is not NUL-terminated")
    if 0 in raw[:-1]:
        raise UnpackError("packstr contains an embedded NUL")
    return raw[:-1], off


def encode_request(rpc: int, body: BytesLike, *, version: int = PROTOCOL_VERSION) -> bytes:
    """Frame a kiosk request: version, length (from itself to the end), rpc, body."""
    if not 0 <= version <= 0xFFFF:
        raise BadArgumentError(f"protocol version {version} is not a uint16")
    if MIN_LENGTH + len(body) > _UINT32_MAX:
        raise BadArgumentError("request body too large")
    return _HDR.pack(version, MIN_LENGTH + len(body), rpc) + bytes(body)


def encode_create_request(r_uid: int, data: BytesLike = b"", *, version: int = PROTOCOL_VERSION) -> bytes:
    """A SACK_CREATE request: ``uint32 r_uid, packmem data``."""
    _check_uid(r_uid, "r_uid")
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise BadArgumentError(f"data must be bytes, not {type(data).__name__}")
    return encode_request(SACK_CREATE, _U32.pack(r_uid) + _pack_mem(data), version=version)


def encode_verify_request(token: Union[str, bytes], *, version: int = PROTOCOL_VERSION) -> bytes:
    """A SACK_VERIFY request: ``packstr token``."""
    return encode_request(SACK_VERIFY, _pack_str(token), version=version)


@dataclass(frozen=True)
class CreateRequest:
    """A decoded SACK_CREATE body."""

    r_uid: int
    data: bytes


def decode_create_body(body: BytesLike) -> CreateRequest:
    """``uint32 r_uid, packmem data``; the body must end exactly there."""
    r_uid, off = _unpack_u32(body, 0)
    data, off = _unpack_mem(body, off)
    if off != len(body):
        raise UnpackError(f"{len(body) - off} trailing bytes after the SACK_CREATE body")
    return CreateRequest(r_uid, data)


def decode_verify_body(body: BytesLike) -> bytes:
    """``packstr token``; the body must end exactly there and the token be non-empty."""
    token, off = _unpack_str(body, 0)
    if off != len(body):
        raise UnpackError(f"{len(body) - off} trailing bytes after the SACK_VERIFY body")
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


# --- client -----------------------------------------------------------------

def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise SackTimeoutError("SACK kiosk did not answer in time")
    return left


def _connect_one(path: str, deadline: float) -> socket.socket:
    """Connect to one kiosk socket. A full listen backlog (EAGAIN) means the
    kiosk is there but busy: retry until the deadline."""
    delay = 0.001
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            sock.settimeout(_remaining(deadline))
            sock.connect(path)
            return sock
        except BlockingIOError:
            sock.close()
            time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
            delay = min(delay * 2, 0.05)
        except BaseException:
            sock.close()
            raise


def _connect(socket_path: Optional[str], cluster: Optional[str], deadline: float) -> socket.socket:
    paths = [os.fspath(socket_path)] if socket_path else client_socket_paths(cluster)
    failures = []
    for path in paths:
        try:
            return _connect_one(path, deadline)
        except socket.timeout:
            raise SackTimeoutError(f"connecting to SACK kiosk at '{path}' timed out") from None
        except OSError as e:
            failures.append(f"'{path}': {e.strerror or e}")
    raise SackConnectError("no SACK kiosk reachable (" + "; ".join(failures) + ")")


def _recv_exact(sock: socket.socket, n: int, deadline: float) -> bytes:
    """Read exactly ``n`` bytes, or fewer if the kiosk closed the connection."""
    buf = bytearray()
    while len(buf) < n:
        sock.settimeout(_remaining(deadline))
        try:
            chunk = sock.recv(min(n - len(buf), 65536))
        except socket.timeout:
            raise SackTimeoutError("SACK kiosk did not answer in time") from None
        except ConnectionResetError:
            chunk = b""  # a close with our request unread: the same refusal
        if not chunk:
            break
        buf += chunk
    return bytes(buf)


def _exchange(request: bytes, reply_head: int, *, socket_path: Optional[str], cluster: Optional[str],
              timeout: float) -> Tuple[socket.socket, bytes, float]:
    """Connect, send the whole request and read the first ``reply_head`` bytes.
    Returns the socket, those bytes and the exchange's deadline."""
    if not timeout > 0:
        raise BadArgumentError("timeout must be positive")
    deadline = time.monotonic() + timeout
    sock = _connect(socket_path, cluster, deadline)
    try:
        sock.settimeout(_remaining(deadline))
        try:
            sock.sendall(request)  # loops over partial writes; one overall timeout
        except socket.timeout:
            raise SackTimeoutError("sending to the SACK kiosk timed out") from None
        except (BrokenPipeError, ConnectionResetError):
            pass  # the kiosk closed early: it refused; reading shows it
        return sock, _recv_exact(sock, reply_head, deadline), deadline
    except BaseException:
        sock.close()
        raise


def sack_create(r_uid: int, data: BytesLike = b"", *, socket_path: Optional[str] = None,
                cluster: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT,
                version: int = PROTOCOL_VERSION) -> str:
    """Ask the kiosk for a credential for this process's own uid/gid.

    ``r_uid`` is the uid allowed to verify it (:data:`SLURM_AUTH_UID_ANY` for
    anyone); ``data`` becomes the credential's payload (Slurm passes the
    message-body hash). ``socket_path`` overrides Slurm's search order
    (:func:`client_socket_paths`). Raises :class:`SackCreateRefusedError` when
    the kiosk closes without a reply, :class:`SackConnectError`,
    :class:`SackTimeoutError` or :class:`SackProtocolError` otherwise."""
    request = encode_create_request(r_uid, data, version=version)
    sock, head, deadline = _exchange(request, 4, socket_path=socket_path, cluster=cluster, timeout=timeout)
    try:
        if not head:
            raise SackCreateRefusedError("SACK kiosk closed the connection without a credential")
        if len(head) < 4:
            raise SackProtocolError("truncated reply length from the SACK kiosk")
        n = _U32.unpack(head)[0]
        if n == 0:
            raise SackProtocolError("SACK kiosk replied with an empty token")
        if n > MAX_REPLY:
            raise SackProtocolError(f"SACK kiosk reply of {n} bytes exceeds {MAX_REPLY}")
        body = _recv_exact(sock, n, deadline)
    finally:
        sock.close()
    if len(body) < n:
        raise SackProtocolError("truncated token from the SACK kiosk")
    try:
        token, _ = _unpack_str(head + body, 0)
        assert token is not None
        return token.decode("ascii")
    except (UnpackError, UnicodeDecodeError) as e:
        raise SackProtocolError(f"malformed token from the SACK kiosk: {e}") from None


def sack_verify(token: Union[str, bytes], *, socket_path: Optional[str] = None,
                cluster: Optional[str] = None, timeout: float = DEFAULT_TIMEOUT,
                version: int = PROTOCOL_VERSION) -> None:
    """Ask the kiosk to verify ``token`` with this process's uid as the
    verifier uid. Returns None when it answers 0; raises
    :class:`SackVerifyRefusedError` (a :class:`CredentialError`) when it
    closes without a reply, as Slurm's kiosk does for any bad token."""
    request = encode_verify_request(token, version=version)
    sock, head, _ = _exchange(request, 4, socket_path=socket_path, cluster=cluster, timeout=timeout)
    sock.close()
    if not head:
        raise SackVerifyRefusedError("SACK kiosk closed the connection: the credential did not verify")
    if len(head) < 4:
        raise SackProtocolError("truncated reply from the SACK kiosk")
    rc = _U32.unpack(head)[0]
    if rc != 0:
        raise SackVerifyRefusedError(f"SACK kiosk answered rc={rc}")


# --- server -----------------------------------------------------------------

@dataclass(frozen=True)
class PeerCred:
    """Who is on the other end of a unix socket, as the kernel says."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCred:
    """SO_PEERCRED: the peer's pid, uid and gid at connect time."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return PeerCred(*_UCRED.unpack(raw))


def _lookup_identity(uid: int, gid: int) -> Optional[Identity]:
    """Slurm's fetch_identity(uid, gid): the passwd entry and the group list
    built from the caller's gid as the kernel reports it. When the lookup
    fails Slurm signs without the "id" object, and so do we (None)."""
    try:
        return identity_from_user(uid, gid)
    except (LookupError, OSError, SlurmAuthError) as e:
        log.warning("no identity for uid=%d: %s", uid, e)
        return None


class _Conn:
    """One client connection: what is read so far, and the reply being written."""

    __slots__ = ("sock", "peer", "deadline", "buf", "need", "rpc", "version", "out")

    def __init__(self, sock: socket.socket, peer: PeerCred, deadline: float) -> None:
        self.sock = sock
        self.peer = peer
        self.deadline = deadline
        self.buf = bytearray()
        self.need = HEADER_LEN  # bytes of request wanted so far
        self.rpc = 0
        self.version = 0
        self.out: Optional[memoryview] = None


_LISTENER = object()
_WAKER = object()


class SackServer:
    """A SACK kiosk. Use as::

        server = SackServer(Keyring.load(), use_client_ids=False)
        server.bind()                  # socket mode 0666, stale socket replaced
        server.serve_forever()         # until stop() (thread- and signal-safe)
        server.close()                 # removes the socket

    ``request_reload()`` makes the loop call ``keyring.reload()`` (Slurm's
    reconfigure) without closing the listening socket; a reload that fails
    keeps the old keys and logs the error. ``install_signal_handlers()`` wires
    SIGHUP to reload and SIGTERM/SIGINT to stop (main thread only).
    """

    def __init__(self, keyring: Keyring, *, socket_path: Optional[str] = None, role: str = "sackd",
                 use_client_ids: bool = False, cluster: Optional[str] = None, ttl: int = 60,
                 request_timeout: float = DEFAULT_TIMEOUT, max_request: int = DEFAULT_MAX_REQUEST,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, lookup_workers: int = 4,
                 env: Optional[Mapping[str, str]] = None) -> None:
        if not request_timeout > 0:
            raise BadArgumentError("request_timeout must be positive")
        if type(ttl) is not int or ttl <= 0:
            raise BadArgumentError("ttl must be a positive integer (seconds)")
        if max_request < HEADER_LEN or max_connections < 1 or lookup_workers < 1:
            raise BadArgumentError("max_request, max_connections and lookup_workers are too small")
        self.keyring = keyring
        self.path = server_socket_path(socket_path, role=role, env=env)
        self.use_client_ids = use_client_ids
        self.cluster = cluster
        self.ttl = ttl
        self.request_timeout = request_timeout
        self.max_request = max_request
        self.max_connections = max_connections
        self.lookup_workers = lookup_workers
        self._lsock: Optional[socket.socket] = None
        self._bound_ino: Optional[Tuple[int, int]] = None
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._sel: Optional[selectors.BaseSelector] = None
        self._conns: Dict[int, _Conn] = {}  # insertion order = deadline order
        self._verifiers: Dict[int, Verifier] = {}
        self._pool: Optional[ThreadPoolExecutor] = None
        # identity lookups done by the pool, for the loop to sign and answer
        self._looked_up: "Deque[Tuple[_Conn, CreateRequest, Future[Optional[Identity]]]]" = deque()
        self._listening = False
        self._accept_pause_until = 0.0
        self._stop = False
        self._reload = False

    @property
    def connection_count(self) -> int:
        """Connections being served now (at most ``max_connections``)."""
        return len(self._conns)

    # -- setup -------------------------------------------------------------

    def bind(self) -> None:
        """Create the socket: parent directory (0755) if missing, stale socket
        removed (a live kiosk or a non-socket file at the path is an error),
        bound so that anyone may connect, then listen.

        Slurm binds under umask 0, which leaves the kernel's default socket
        mode 0777; execute means nothing on a socket, so binding under umask
        0111 gives exactly the 0666 of the contract with the same access."""
        path = self.path
        if len(os.fsencode(path)) >= 108:
            raise SackServerError(f"socket path '{path}' is too long for a unix socket")
        parent = os.path.dirname(path) or "."
        if not os.path.isdir(parent):
            try:
                os.mkdir(parent, 0o755)
            except OSError as e:
                raise SackServerError(f"cannot create '{parent}': {e.strerror}") from None
        self._remove_stale(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            old = os.umask(0o111)
            try:
                sock.bind(path)
            finally:
                os.umask(old)
            st = os.lstat(path)
            self._bound_ino = (st.st_dev, st.st_ino)
            sock.listen(socket.SOMAXCONN)
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise SackServerError(f"cannot listen on '{path}': {e.strerror or e}") from None
        self._lsock = sock
        log.info("SACK kiosk listening on %s", path)

    @staticmethod
    def _remove_stale(path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(st.st_mode):
            raise SackServerError(f"'{path}' exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        probe.settimeout(1.0)
        try:
            probe.connect(path)
        except OSError:
            os.unlink(path)  # nobody listening: stale
            return
        finally:
            probe.close()
        raise SackServerError(f"another SACK kiosk is serving on '{path}'")

    def install_signal_handlers(self) -> None:
        """SIGHUP: reload keys; SIGTERM and SIGINT: stop (main thread only)."""
        signal.signal(signal.SIGHUP, lambda *_: self.request_reload())
        signal.signal(signal.SIGTERM, lambda *_: self.stop())
        signal.signal(signal.SIGINT, lambda *_: self.stop())

    def stop(self) -> None:
        """Make serve_forever return (safe from any thread or a signal handler)."""
        self._stop = True
        self._wake()

    def request_reload(self) -> None:
        """Reload the keyring on the serving thread (safe from a signal handler)."""
        self._reload = True
        self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:
            pass  # already full (a wake-up is pending) or closed

    def close(self) -> None:
        """Close every connection and the listening socket; remove the socket
        file if it is still the one this server bound."""
        for conn in list(self._conns.values()):
            self._drop(conn)
        if self._lsock is not None:
            self._lsock.close()
            self._lsock = None
            try:
                st = os.lstat(self.path)
                if (st.st_dev, st.st_ino) == self._bound_ino:
                    os.unlink(self.path)
            except OSError:
                pass
        self._wake_r.close()
        self._wake_w.close()

    def __enter__(self) -> "SackServer":
        if self._lsock is None:
            self.bind()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- loop --------------------------------------------------------------

    def serve_forever(self) -> None:
        """Serve until :meth:`stop`."""
        if self._lsock is None:
            self.bind()
        sel = self._sel = selectors.DefaultSelector()
        sel.register(self._wake_r, selectors.EVENT_READ, _WAKER)
        if self.use_client_ids:
            self._pool = ThreadPoolExecutor(self.lookup_workers, thread_name_prefix="sack-lookup")
        self._set_listening(True)
        try:
            while not self._stop:
                for key, mask in sel.select(self._poll_timeout()):
                    if key.data is _LISTENER:
                        self._accept()
                    elif key.data is _WAKER:
                        self._drain_waker()
                    else:
                        self._on_event(key.data, mask)
                self._finish_lookups()
                if self._reload:
                    self._do_reload()
                self._expire()
        finally:
            for conn in list(self._conns.values()):
                self._drop(conn)
            if self._pool is not None:
                self._pool.shutdown(wait=False)  # a lookup stuck in NSS must not hold up the stop
                self._pool = None
            self._looked_up.clear()
            sel.close()
            self._sel = None
            self._listening = False
            self._stop = False

    def _poll_timeout(self) -> float:
        now = time.monotonic()
        timeout = 1.0
        for conn in self._conns.values():  # the first has the earliest deadline
            timeout = min(timeout, conn.deadline - now)
            break
        if not self._listening:
            timeout = min(timeout, self._accept_pause_until - now)
        return max(timeout, 0.0)

    def _set_listening(self, on: bool) -> None:
        assert self._sel is not None and self._lsock is not None
        if on and not self._listening:
            self._sel.register(self._lsock, selectors.EVENT_READ, _LISTENER)
        elif not on and self._listening:
            self._sel.unregister(self._lsock)
        self._listening = on

    def _drain_waker(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except OSError:
            pass

    def _accept(self) -> None:
        assert self._lsock is not None
        for _ in range(64):  # then let established connections run
            if len(self._conns) >= self.max_connections:
                self._set_listening(False)  # resumes in _expire/_drop
                self._accept_pause_until = float("inf")
                return
            try:
                sock, _ = self._lsock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    log.error("accept failed (%s); pausing accepts briefly", e.strerror)
                    self._set_listening(False)
                    self._accept_pause_until = time.monotonic() + 0.1
                    return
                log.debug("accept failed: %s", e)
                continue
            try:
                sock.setblocking(False)
                peer = peer_credentials(sock)  # from the kernel only
            except OSError as e:
                log.error("cannot read SO_PEERCRED: %s", e)
                sock.close()
                continue
            conn = _Conn(sock, peer, time.monotonic() + self.request_timeout)
            self._conns[sock.fileno()] = conn
            assert self._sel is not None
            self._sel.register(sock, selectors.EVENT_READ, conn)

    def _expire(self) -> None:
        now = time.monotonic()
        expired = []
        for conn in self._conns.values():
            if conn.deadline > now:
                break
            expired.append(conn)
        for conn in expired:
            log.debug("SACK request from uid=%d pid=%d timed out", conn.peer.uid, conn.peer.pid)
            self._drop(conn)
        if not self._listening and self._lsock is not None and now >= self._accept_pause_until:
            self._set_listening(True)

    def _drop(self, conn: _Conn) -> None:
        """Close a connection (without a reply if none was queued)."""
        fd = conn.sock.fileno()
        if fd >= 0:
            self._conns.pop(fd, None)
            if self._sel is not None:
                try:
                    self._sel.unregister(conn.sock)
                except (KeyError, ValueError):
                    pass
        conn.sock.close()
        if not self._listening and self._accept_pause_until == float("inf") and \
                len(self._conns) < self.max_connections:
            self._accept_pause_until = 0.0  # _expire resumes accepting

    def _on_event(self, conn: _Conn, mask: int) -> None:
        try:
            if conn.out is not None:
                self._write(conn)
            else:
                self._read(conn)
        except Exception:  # never let one connection take the kiosk down
            log.exception("SACK connection from uid=%d pid=%d failed", conn.peer.uid, conn.peer.pid)
            self._drop(conn)

    def _read(self, conn: _Conn) -> None:
        """Read what is available, never past the declared length; answer once
        the request is complete."""
        while len(conn.buf) < conn.need:
            try:
                chunk = conn.sock.recv(min(conn.need - len(conn.buf), 65536))
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(conn)
                return
            if not chunk:  # the client went away before sending a whole request
                self._drop(conn)
                return
            conn.buf += chunk
            if len(conn.buf) == HEADER_LEN == conn.need and not self._parse_header(conn):
                self._drop(conn)
                return
        self._dispatch(conn)

    def _parse_header(self, conn: _Conn) -> bool:
        """Check the header before reading any body: length within the cap, a
        known rpc. Sets how many bytes the whole request has."""
        conn.version, length, conn.rpc = _HDR.unpack_from(conn.buf)
        if length < MIN_LENGTH or length > self.max_request - 2:
            log.debug("SACK request from uid=%d pid=%d: bad length %d", conn.peer.uid, conn.peer.pid, length)
            return False
        if conn.rpc not in (SACK_CREATE, SACK_VERIFY):
            log.error("SACK request from uid=%d pid=%d: unexpected rpc=%d",
                      conn.peer.uid, conn.peer.pid, conn.rpc)
            return False
        conn.need = 2 + length
        return True

    def _write(self, conn: _Conn) -> None:
        assert conn.out is not None
        try:
            sent = conn.sock.send(conn.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self._drop(conn)
            return
        conn.out = conn.out[sent:]
        if not conn.out:
            self._drop(conn)  # one request per connection: done

    # -- requests ----------------------------------------------------------

    def _dispatch(self, conn: _Conn) -> None:
        """Answer a complete request; a SACK_CREATE with use_client_ids first
        has the caller looked up on a worker thread. Any failure closes the
        connection without a reply."""
        peer = conn.peer
        log.debug("SACK rpc=%d version=%d from uid=%d gid=%d pid=%d",
                  conn.rpc, conn.version, peer.uid, peer.gid, peer.pid)
        body = memoryview(conn.buf)[HEADER_LEN:]
        reply: Optional[bytes] = None
        try:
            if conn.rpc == SACK_VERIFY:
                reply = self._verify(peer, decode_verify_body(body))
            elif self.use_client_ids:
                self._start_lookup(conn, decode_create_body(body))
                return
            else:
                reply = self._create(peer, decode_create_body(body), None)
        except CredentialError as e:
            log.debug("SACK_VERIFY for uid=%d pid=%d failed: %s", peer.uid, peer.pid, e)
        except SlurmAuthError as e:
            log.info("SACK rpc=%d from uid=%d pid=%d refused: %s", conn.rpc, peer.uid, peer.pid, e)
        finally:
            body.release()
            conn.buf = bytearray()
        self._answer(conn, reply)

    def _answer(self, conn: _Conn, reply: Optional[bytes]) -> None:
        """Send ``reply`` (as far as the socket takes it now), or close on None."""
        if reply is None:
            self._drop(conn)
            return
        conn.out = memoryview(reply)
        self._write(conn)
        if conn.sock.fileno() >= 0:  # not all sent: finish when writable
            assert self._sel is not None
            try:
                self._sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
            except KeyError:  # unregistered while its identity was looked up
                self._sel.register(conn.sock, selectors.EVENT_WRITE, conn)

    def _start_lookup(self, conn: _Conn, req: CreateRequest) -> None:
        """Look the caller up (passwd, group list) off the loop: a slow
        directory service then delays only its own callers. The connection's
        deadline keeps running; it is not read meanwhile."""
        assert self._sel is not None and self._pool is not None
        self._sel.unregister(conn.sock)
        future = self._pool.submit(_lookup_identity, conn.peer.uid, conn.peer.gid)

        def done(f: "Future[Optional[Identity]]") -> None:
            self._looked_up.append((conn, req, f))
            self._wake()

        future.add_done_callback(done)

    def _finish_lookups(self) -> None:
        while self._looked_up:
            conn, req, future = self._looked_up.popleft()
            if conn.sock.fileno() < 0:
                continue  # closed meanwhile (deadline passed, or stopping)
            reply: Optional[bytes] = None
            try:
                reply = self._create(conn.peer, req, future.result())
            except SlurmAuthError as e:
                log.info("SACK_CREATE from uid=%d pid=%d refused: %s", conn.peer.uid, conn.peer.pid, e)
            except Exception:
                log.exception("SACK_CREATE from uid=%d pid=%d failed", conn.peer.uid, conn.peer.pid)
            self._answer(conn, reply)

    def _create(self, peer: PeerCred, req: CreateRequest, identity: Optional[Identity]) -> bytes:
        token = create_credential(self.keyring, uid=peer.uid, gid=peer.gid, context="sack",
                                  ruid=req.r_uid, payload=req.data or None, ttl=self.ttl,
                                  cluster=self.cluster, identity=identity)
        return _pack_str(token)

    def _verify(self, peer: PeerCred, token: bytes) -> bytes:
        verifier = self._verifiers.get(peer.uid)
        if verifier is None:
            if len(self._verifiers) >= 4096:
                self._verifiers.clear()
            verifier = self._verifiers[peer.uid] = Verifier(
                self.keyring, verifier_uid=peer.uid, contexts=RPC_CONTEXTS)
        verifier.verify(token)
        return _U32.pack(0)

    def _do_reload(self) -> None:
        self._reload = False
        try:
            self.keyring.reload()
        except (SlurmAuthError, OSError) as e:
            log.error("key reload failed, keeping the current keys: %s", e)
            return
        self._verifiers.clear()
        log.info("keys reloaded")


__all__ = [
    "SACK_CREATE", "SACK_VERIFY", "SLURM_AUTH_UID_ANY", "CreateRequest", "PeerCred", "SackServer",
    "client_socket_paths", "decode_create_body", "decode_verify_body", "encode_create_request",
    "encode_request", "encode_verify_request", "peer_credentials", "sack_create", "sack_verify",
    "server_socket_path",
]
