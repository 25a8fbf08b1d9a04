"""The SACK kiosk's server: a ``sackd`` (:class:`SackServer`), answering
each local process with its own uid (``SO_PEERCRED``), never the request's."""
from __future__ import annotations

import errno
import heapq
import itertools
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
from typing import Deque, Dict, List, Mapping, NamedTuple, Optional, Tuple, Union

from .._bounded import BoundedCache
from .._loglimit import LogLimiter
from .._bindings import sack_serve as _csack
from ..credential import (PROTOCOL_VERSION, RPC_CONTEXTS, create_credential, identity_members,
                          short_hostname)
from ..exceptions import BadArgumentError, CredentialError, SackServerError, SlurmAuthError
from ..identity import Identity, identity_from_user
from ..keys import Keyring, KeySnapshot
from ..verifier import Verifier
from .wire import (DEFAULT_LOG_INTERVAL, DEFAULT_MAX_CONNECTIONS, DEFAULT_MAX_CONNECTIONS_PER_UID,
                   DEFAULT_MAX_REQUEST, DEFAULT_READ_TIMEOUT, DEFAULT_TIMEOUT, HEADER_LEN,
                   MIN_LENGTH, SACK_CREATE, SACK_VERIFY, CreateRequest, decode_create_body,
                   decode_header, decode_verify_body, encode_token_reply, encode_verify_reply,
                   server_socket_path)

log = logging.getLogger("slurmauth_fast.sack")

_UCRED = struct.Struct("=iII")  # struct ucred: pid_t pid, uid_t uid, gid_t gid
#: The environment variable that chooses the loop when ``native`` is not given: "0" is
#: the Python loop, anything else (or unset) the C loop.
NATIVE_ENV = "SLURMAUTH_FAST_SACK_NATIVE"


# --- server -----------------------------------------------------------------

class PeerCred(NamedTuple):
    """Who is on the other end of a unix socket, as the kernel says (a
    named tuple: built once per connection, on the kiosk's hot path)."""

    pid: int
    uid: int
    gid: int


def peer_credentials(sock: socket.socket) -> PeerCred:
    """SO_PEERCRED: the peer's pid, uid and gid at connect time."""
    raw = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _UCRED.size)
    return PeerCred._make(_UCRED.unpack(raw))


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

    __slots__ = ("sock", "peer", "accepted", "deadline", "buf", "need", "rpc", "version", "out",
                 "open", "whole", "watched")

    def __init__(self, sock: socket.socket, peer: PeerCred, deadline: float, accepted: float = 0.0) -> None:
        self.sock = sock
        self.peer = peer
        self.accepted = accepted
        self.deadline = deadline  # the read deadline until the request is whole
        self.open = True
        self.whole = False  # the whole request is read
        self.watched = False  # registered with the selector (it had to wait for the socket)
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

    Limits against a local user starving the kiosk (the socket is 0666):

    - ``read_timeout``: seconds a connection has, from accept, to send its
      whole request (capped by ``request_timeout``, which bounds the whole
      exchange including the identity lookup and the reply);
    - ``max_connections``: connections held at once (more wait in the backlog);
    - ``max_connections_per_uid``: connections one peer uid (SO_PEERCRED) may
      hold; a connection over it is closed at accept, without taking a slot,
      and counted in ``stats["over_uid_cap"]``. It applies to root and
      SlurmUser too; ``uid_max_connections`` gives chosen uids their own cap.
      No cap may exceed half of ``max_connections`` (the default is 64, or
      half the table when that is smaller);
    - ``log_interval``: at most one log line per class (unexpected rpc, bad
      request, over the uid cap, refused, failed) per that many seconds, with
      the count of the lines left out.

    ``native`` (the default: True, unless the environment sets
    SLURMAUTH_FAST_SACK_NATIVE=0) serves with the C loop (``csrc/sack_serve.c``, run without
    the GIL, one call per poll round): accepting, SO_PEERCRED, the caps and
    deadlines above, reading requests and, without ``use_client_ids``,
    signing well-formed SACK_CREATE requests and writing their replies all
    happen in C with the same policy. Every other request (SACK_VERIFY, a
    SACK_CREATE with ``use_client_ids`` or one C cannot decode or sign) comes
    back here and is answered by the same code as without it (with debug
    logging on, every request comes back here, for its debug line). ``stats`` is
    refreshed after each round of the C loop, with more counters:
    ``c_created`` (SACK_CREATE answered in C), ``c_handed_up`` and
    ``c_identity_hits``.

    ``identity_cache`` (seconds, default 0; C loop with ``use_client_ids``
    only): the C loop signs a (uid, gid)'s SACK_CREATE with the identity looked
    up for it for this long, instead of looking it up for every request (0).
    A reload empties the cache.
    """

    def __init__(self, keyring: Keyring, *, socket_path: Optional[str] = None, role: str = "sackd",
                 use_client_ids: bool = False, cluster: Optional[str] = None, ttl: int = 60,
                 request_timeout: float = DEFAULT_TIMEOUT, max_request: int = DEFAULT_MAX_REQUEST,
                 max_connections: int = DEFAULT_MAX_CONNECTIONS, lookup_workers: int = 4,
                 env: Optional[Mapping[str, str]] = None, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 max_connections_per_uid: Optional[int] = None,
                 uid_max_connections: Optional[Mapping[int, int]] = None,
                 log_interval: float = DEFAULT_LOG_INTERVAL, native: Optional[bool] = None,
                 identity_cache: float = 0.0) -> None:
        if not request_timeout > 0:
            raise BadArgumentError("request_timeout must be positive")
        if not read_timeout > 0:
            raise BadArgumentError("read_timeout must be positive")
        if not log_interval >= 0:
            raise BadArgumentError("log_interval must not be negative")
        if not identity_cache >= 0:
            raise BadArgumentError("identity_cache must not be negative")
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
        self.read_timeout = min(read_timeout, request_timeout)
        # no single uid may hold more than half of the table
        half = max(1, max_connections // 2)
        if max_connections_per_uid is None:
            max_connections_per_uid = min(DEFAULT_MAX_CONNECTIONS_PER_UID, half)
        self.uid_max_connections: Dict[int, int] = dict(uid_max_connections or {})
        for cap in (max_connections_per_uid, *self.uid_max_connections.values()):
            if type(cap) is not int or not 1 <= cap <= half:
                raise BadArgumentError(f"a per-uid connection cap must be an integer from 1 to "
                                       f"{half} (half of max_connections={max_connections})")
        self.max_connections_per_uid = max_connections_per_uid
        self.lookup_workers = lookup_workers
        self.limited_log = LogLimiter(log, log_interval)
        #: counters: connections refused over their uid's cap, connections cut
        #: off by the read deadline or the request deadline, requests refused
        #: as malformed (bad length, unexpected rpc)
        self.stats: Dict[str, int] = {"over_uid_cap": 0, "read_timeouts": 0, "request_timeouts": 0,
                                      "bad_requests": 0}
        self._per_uid: Dict[int, int] = {}
        self._deadlines: List[Tuple[float, int, _Conn]] = []  # heap; stale entries skipped
        self._seq = itertools.count()
        self._lsock: Optional[socket.socket] = None
        self._bound_ino: Optional[Tuple[int, int]] = None
        self._wake_r, self._wake_w = socket.socketpair()
        for s in (self._wake_r, self._wake_w):
            s.setblocking(False)
        self._sel: Optional[selectors.BaseSelector] = None
        self._conns: Dict[int, _Conn] = {}
        self._verifiers: BoundedCache[int, Verifier] = BoundedCache(4096)
        self._pool: Optional[ThreadPoolExecutor] = None
        # identity lookups done by the pool, for the loop to sign and answer (to a
        # connection of the Python loop, or by id to one of the C loop)
        self._looked_up: "Deque[Tuple[Union[_Conn, int], PeerCred, CreateRequest, Future[Optional[Identity]]]]" = \
            deque()
        self._listening = False
        self._accept_pause_until = 0.0
        self._stop = False
        self._reload = False
        #: serve with the C loop; None: yes, unless the environment's SLURMAUTH_FAST_SACK_NATIVE
        #: is "0" (the Python loop)
        self.native = (os.environ.get(NATIVE_ENV) != "0") if native is None else bool(native)
        self._core: Optional[_csack.SackCore] = None
        self._core_keys: Optional[KeySnapshot] = None   # what the C loop signs with
        self._core_host: Optional[str] = None
        #: use_client_ids with the C loop: seconds the C loop signs with an identity
        #: looked up for a (uid, gid) before looking it up again (0: every request)
        self.identity_cache = float(identity_cache)
        if self.identity_cache and not self.native:
            raise BadArgumentError("identity_cache needs the C loop (native)")

    @property
    def connection_count(self) -> int:
        """Connections being served now (at most ``max_connections``)."""
        core = self._core
        if core is not None:
            return core.open_count()
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
        if self.native:
            self._serve_native()
            return
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
            self._deadlines.clear()
            sel.close()
            self._sel = None
            self._listening = False
            self._stop = False

    def _poll_timeout(self) -> float:
        now = time.monotonic()
        timeout = 1.0
        if self._deadlines:  # the earliest (perhaps stale: then we wake early, harmlessly)
            timeout = min(timeout, self._deadlines[0][0] - now)
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
                self.limited_log.error("peercred", "cannot read SO_PEERCRED: %s", e)
                sock.close()
                continue
            held = self._per_uid.get(peer.uid, 0)
            if held >= self.uid_max_connections.get(peer.uid, self.max_connections_per_uid):
                sock.close()  # never takes a slot from another uid
                self.stats["over_uid_cap"] += 1
                self.limited_log.warning("uidcap", "uid=%d pid=%d is over its cap of %d connections; "
                                         "closing its new connections", peer.uid, peer.pid, held)
                continue
            self._per_uid[peer.uid] = held + 1
            now = time.monotonic()
            conn = _Conn(sock, peer, now + self.read_timeout, accepted=now)
            self._conns[sock.fileno()] = conn
            # A client writes its request right after connecting, so it is
            # usually here already: read and answer it now. Only a connection
            # that has to wait for its socket is watched (and its deadline kept).
            self._on_event(conn, selectors.EVENT_READ)
            if conn.open and not conn.whole:
                self._watch(conn, selectors.EVENT_READ)

    def _watch(self, conn: _Conn, events: int) -> None:
        """Wait for the socket (the rest of the request, or room for the
        reply) until the connection's deadline."""
        assert self._sel is not None
        if conn.watched:
            self._sel.modify(conn.sock, events, conn)
        else:
            self._sel.register(conn.sock, events, conn)
            conn.watched = True
        self._push_deadline(conn)

    def _push_deadline(self, conn: _Conn) -> None:
        heapq.heappush(self._deadlines, (conn.deadline, next(self._seq), conn))
        if len(self._deadlines) > 2 * len(self._conns) + 1024:  # drop the stale entries
            self._deadlines = [(c.deadline, next(self._seq), c) for c in self._conns.values()]
            heapq.heapify(self._deadlines)

    def _expire(self) -> None:
        now = time.monotonic()
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, _, conn = heapq.heappop(heap)
            if not conn.open or conn.deadline != deadline:
                continue  # closed already, or given a later deadline
            reading = not conn.whole
            self.stats["read_timeouts" if reading else "request_timeouts"] += 1
            log.debug("SACK request from uid=%d pid=%d timed out (%s)", conn.peer.uid, conn.peer.pid,
                      "reading" if reading else "answering")
            self._drop(conn)
        if not self._listening and self._lsock is not None and now >= self._accept_pause_until:
            self._set_listening(True)

    def _drop(self, conn: _Conn) -> None:
        """Close a connection (without a reply if none was queued)."""
        if conn.open:
            conn.open = False
            left = self._per_uid.get(conn.peer.uid, 0) - 1
            if left > 0:
                self._per_uid[conn.peer.uid] = left
            else:
                self._per_uid.pop(conn.peer.uid, None)
        fd = conn.sock.fileno()
        if fd >= 0:
            self._conns.pop(fd, None)
            if conn.watched and self._sel is not None:
                conn.watched = False
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
            self.limited_log.error("failed", "SACK connection from uid=%d pid=%d failed",
                                   conn.peer.uid, conn.peer.pid, exc_info=True)
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
        conn.version, length, conn.rpc = decode_header(conn.buf)
        if length < MIN_LENGTH or length > self.max_request - 2:
            self.stats["bad_requests"] += 1
            log.debug("SACK request from uid=%d pid=%d: bad length %d", conn.peer.uid, conn.peer.pid, length)
            return False
        if conn.rpc not in (SACK_CREATE, SACK_VERIFY):
            self.stats["bad_requests"] += 1
            self.limited_log.error("rpc", "SACK request from uid=%d pid=%d: unexpected rpc=%d",
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
        # the request is whole: from now on only the exchange's deadline holds
        # (kept by _watch or _start_lookup if the answer has to wait)
        conn.whole = True
        conn.deadline = conn.accepted + self.request_timeout
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
            self.limited_log.info("refused", "SACK rpc=%d from uid=%d pid=%d refused: %s",
                                  conn.rpc, peer.uid, peer.pid, e)
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
        if conn.open:  # not all sent: finish when writable
            self._watch(conn, selectors.EVENT_WRITE)

    def _start_lookup(self, conn: _Conn, req: CreateRequest) -> None:
        """Look the caller up (passwd, group list) off the loop: a slow
        directory service then delays only its own callers. The connection's
        deadline keeps running; it is not read meanwhile."""
        assert self._sel is not None and self._pool is not None
        if conn.watched:
            conn.watched = False
            self._sel.unregister(conn.sock)
        self._push_deadline(conn)
        self._submit_lookup(conn, conn.peer, req)

    def _submit_lookup(self, target: Union[_Conn, int], peer: PeerCred, req: CreateRequest) -> None:
        """Look the peer up on the pool; the loop answers ``target`` (a Python
        loop connection, or a C loop connection id) once it is done."""
        assert self._pool is not None
        future = self._pool.submit(_lookup_identity, peer.uid, peer.gid)

        def done(f: "Future[Optional[Identity]]") -> None:
            self._looked_up.append((target, peer, req, f))
            self._wake()

        future.add_done_callback(done)

    def _finish_lookups(self) -> None:
        while self._looked_up:
            target, peer, req, future = self._looked_up.popleft()
            if isinstance(target, _Conn) and not target.open:
                continue  # closed meanwhile (deadline passed, or stopping)
            reply: Optional[bytes] = None
            try:
                reply = self._create(peer, req, future.result())
            except SlurmAuthError as e:
                self.limited_log.info("refused", "SACK_CREATE from uid=%d pid=%d refused: %s",
                                      peer.uid, peer.pid, e)
            except Exception:
                self.limited_log.error("failed", "SACK_CREATE from uid=%d pid=%d failed",
                                       peer.uid, peer.pid, exc_info=True)
            if isinstance(target, _Conn):
                self._answer(target, reply)
            else:
                if reply is not None and self.identity_cache > 0 and self._core is not None:
                    # what was just signed for this (uid, gid): the C loop signs alike
                    # for identity_cache seconds
                    identity = future.result()
                    self._core.set_identity(peer.uid, peer.gid,
                                            b"" if identity is None else identity_members(identity),
                                            self.identity_cache)
                self._core_answer(target, reply)

    def _create(self, peer: PeerCred, req: CreateRequest, identity: Optional[Identity]) -> bytes:
        token = create_credential(self.keyring, uid=peer.uid, gid=peer.gid, context="sack",
                                  ruid=req.r_uid, payload=req.data or None, ttl=self.ttl,
                                  cluster=self.cluster, identity=identity)
        return encode_token_reply(token)

    def _verify(self, peer: PeerCred, token: bytes) -> bytes:
        verifier = self._verifiers.get(peer.uid)
        if verifier is None:
            verifier = Verifier(self.keyring, verifier_uid=peer.uid, contexts=RPC_CONTEXTS,
                                use_client_ids=self.use_client_ids)
            self._verifiers.put(peer.uid, verifier)
        verifier.verify(token)
        return encode_verify_reply(0)

    def _do_reload(self) -> None:
        self._reload = False
        try:
            self.keyring.reload()
        except (SlurmAuthError, OSError) as e:
            log.error("key reload failed, keeping the current keys: %s", e)
            return
        self._verifiers.clear()
        log.info("keys reloaded")

    # -- the C loop (native=True) ---------------------------------------------

    def _serve_native(self) -> None:
        """serve_forever with the C loop: one C call per round (without the GIL),
        then the requests it handed up, the identity lookups done, a reload."""
        assert self._lsock is not None
        core = self._core = _csack.SackCore(
            self._lsock.fileno(), wake_fd=self._wake_r.fileno(), max_conns=self.max_connections,
            max_per_uid=self.max_connections_per_uid, max_request=self.max_request,
            read_timeout=self.read_timeout, request_timeout=self.request_timeout)
        for uid, cap in self.uid_max_connections.items():
            core.set_uid_cap(uid, cap)
        if self.use_client_ids:
            self._pool = ThreadPoolExecutor(self.lookup_workers, thread_name_prefix="sack-lookup")
        self._listening = True
        try:
            while not self._stop:
                self._core_policy(core)
                for ev in core.poll(1000):
                    if ev.kind == _csack.EV_REQUEST:
                        self._core_request(ev)
                    else:
                        self._core_notice(ev)
                self._finish_lookups()
                if self._reload:
                    self._do_reload()
                st = core.stats()
                for name in ("over_uid_cap", "read_timeouts", "request_timeouts", "bad_requests"):
                    self.stats[name] = st[name]
                # and what only the C loop has: SACK_CREATE answered in C, requests handed up
                self.stats["c_created"] = st["created"]
                self.stats["c_handed_up"] = st["handed_up"]
                self.stats["c_identity_hits"] = st["id_hits"]
                self._per_uid = core.uid_counts() if st["conns_open"] else {}
        finally:
            self._core = None
            self._core_keys = None
            core.free()
            if self._pool is not None:
                self._pool.shutdown(wait=False)  # a lookup stuck in NSS must not hold up the stop
                self._pool = None
            self._looked_up.clear()
            self._per_uid = {}
            self._listening = False
            self._stop = False

    def _core_policy(self, core: _csack.SackCore) -> None:
        """What the C loop signs with: the keyring's current snapshot and host
        name (checked each round: a reload or a replaced keyring is picked up);
        with use_client_ids every SACK_CREATE comes here instead."""
        caching = self.use_client_ids and self.identity_cache > 0
        if self.use_client_ids and not caching:
            return
        if log.isEnabledFor(logging.DEBUG):
            # debug logging: every request comes here and gets its debug line, as in the
            # Python loop
            if self._core_keys is not None:
                core.set_create(None, 0, 0, None, b"")
                self._core_keys = None
            return
        snap = self.keyring.snapshot()
        host = short_hostname()
        if snap is self._core_keys and host == self._core_host:
            return
        try:
            core.set_create(snap, self.ttl, PROTOCOL_VERSION,
                            None if self.cluster is None else self.cluster.encode(), host.encode())
        except (SlurmAuthError, UnicodeEncodeError):
            core.set_create(None, 0, 0, None, b"")  # C cannot hold them: every one comes here
        if caching:   # new keys or host: identities are looked up afresh
            core.set_identities(True)
        self._core_keys = snap
        self._core_host = host

    def _core_notice(self, ev: _csack.SackEvent) -> None:
        """A connection the C loop closed, for the log (the counters are C's)."""
        if ev.kind == _csack.EV_UID_CAP:
            self.limited_log.warning("uidcap", "uid=%d pid=%d is over its cap of %d connections; "
                                     "closing its new connections", ev.uid, ev.pid, ev.held)
        elif ev.kind == _csack.EV_BAD_RPC:
            self.limited_log.error("rpc", "SACK request from uid=%d pid=%d: unexpected rpc=%d",
                                   ev.uid, ev.pid, ev.rpc)
        elif ev.kind == _csack.EV_PEERCRED:
            self.limited_log.error("peercred", "cannot read SO_PEERCRED: %s", os.strerror(ev.sys_errno))
        elif ev.kind == _csack.EV_ACCEPT:
            log.error("accept failed (%s); pausing accepts briefly", os.strerror(ev.sys_errno))

    def _core_request(self, ev: _csack.SackEvent) -> None:
        """A whole request the C loop handed up: answered as _dispatch answers it."""
        peer = PeerCred(ev.pid, ev.uid, ev.gid)
        try:
            log.debug("SACK rpc=%d version=%d from uid=%d gid=%d pid=%d",
                      ev.rpc, ev.version, peer.uid, peer.gid, peer.pid)
            reply: Optional[bytes] = None
            try:
                if ev.rpc == SACK_VERIFY:
                    reply = self._verify(peer, decode_verify_body(ev.body))
                elif self.use_client_ids:
                    self._submit_lookup(ev.conn_id, peer, decode_create_body(ev.body))
                    return
                else:
                    reply = self._create(peer, decode_create_body(ev.body), None)
            except CredentialError as e:
                log.debug("SACK_VERIFY for uid=%d pid=%d failed: %s", peer.uid, peer.pid, e)
            except SlurmAuthError as e:
                self.limited_log.info("refused", "SACK rpc=%d from uid=%d pid=%d refused: %s",
                                      ev.rpc, peer.uid, peer.pid, e)
        except Exception:  # never let one connection take the kiosk down
            self.limited_log.error("failed", "SACK connection from uid=%d pid=%d failed",
                                   peer.uid, peer.pid, exc_info=True)
            reply = None
        self._core_answer(ev.conn_id, reply)

    def _core_answer(self, conn_id: int, reply: Optional[bytes]) -> None:
        core = self._core
        if core is None:
            return
        if reply is None:
            core.close(conn_id)
        else:
            core.reply(conn_id, reply)


__all__ = ["PeerCred", "SackServer", "peer_credentials"]
