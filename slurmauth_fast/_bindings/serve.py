"""Thin binding of the C serving core (``csrc/serve.h``): no policy here.

:class:`ServeCore` owns one ``sa_serve``; a driver calls :meth:`ServeCore.poll`
in a loop (the C call runs without the GIL: cffi releases it around every
call into the compiled module), answers each event with :meth:`reply`,
:meth:`forward` or :meth:`close`, and swaps keys with :meth:`set_keys`
(after a ``Keyring.reload()``, e.g. on SIGHUP). Not thread-safe: one thread
drives it; :meth:`wakeup` is the only call another thread may make.
"""
from __future__ import annotations

import errno
import socket
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

from ..exceptions import ServeError
from ._ffi import ffi, lib
from .ratelimit import RateTable
from .status import error_for_status

# event kinds
EV_VERIFIED = lib.SA_SERVE_EV_VERIFIED
EV_UNVERIFIED = lib.SA_SERVE_EV_UNVERIFIED
EV_REFUSED = lib.SA_SERVE_EV_REFUSED
EV_CLOSED = lib.SA_SERVE_EV_CLOSED
EV_FORWARD_DONE = lib.SA_SERVE_EV_FORWARD_DONE
EV_FORWARD_ERROR = lib.SA_SERVE_EV_FORWARD_ERROR
EV_RATE_LIMITED = lib.SA_SERVE_EV_RATE_LIMITED
#: ServeEvent.objects: the token carries an "id" identity (the core read it as JSON only)
OBJ_ID = lib.SA_SERVE_OBJ_ID

# refusal policies
REFUSE_RC = lib.SA_SERVE_REFUSE_RC
REFUSE_CLOSE = lib.SA_SERVE_REFUSE_CLOSE
REFUSE_REPORT = lib.SA_SERVE_REFUSE_REPORT

FWD_BIND_PEER = lib.SA_SERVE_FWD_BIND_PEER
FWD_TRANSPARENT = lib.SA_SERVE_FWD_TRANSPARENT

# whose address the configured upstream sees (set_upstream)
SRC_LOOPBACK = lib.SA_SERVE_SRC_LOOPBACK
SRC_REMOTE = lib.SA_SERVE_SRC_REMOTE
SRC_ALL = lib.SA_SERVE_SRC_ALL

AF_UNIX = lib.SA_SERVE_AF_UNIX
AF_INET = lib.SA_SERVE_AF_INET
AF_INET6 = lib.SA_SERVE_AF_INET6

_CONFIG_FIELDS = ("max_conns", "max_per_ip", "max_frame", "max_head", "buf_size", "pool_keep",
                  "max_buffered", "head_ms", "body_ms", "write_ms", "up_connect_ms",
                  "up_reply_ms", "min_version", "max_version", "refuse_mode",
                  "report_forward_done", "defer_accept_s", "backlog")

_STATS_FIELDS = tuple(name for name, _ in ffi.typeof("sa_serve_stats").fields)


@dataclass
class ServeEvent:
    """One event from :meth:`ServeCore.poll`. ``frame`` is a copy of the whole
    frame (length prefix included) for request events, else ``b""``."""

    conn_id: int
    kind: int
    status: int
    sys_errno: int
    plugin: int
    uid: int
    gid: int
    objects: int
    id_digest: bytes
    msg_type: int
    version: int
    flags: int
    listener: int
    peer_family: int
    peer_port: int
    peer_addr: bytes
    frame: bytes
    cred_off: int
    cred_len: int
    user_off: int
    user_len: int
    body_off: int
    body_len: int
    reply_len: int
    upstream_ns: int

    @property
    def peer(self) -> Optional[Tuple[str, int]]:
        """(ip, port) of a TCP peer; None for a unix socket peer."""
        if self.peer_family == AF_INET:
            return socket.inet_ntop(socket.AF_INET, self.peer_addr[:4]), self.peer_port
        if self.peer_family == AF_INET6:
            return socket.inet_ntop(socket.AF_INET6, self.peer_addr), self.peer_port
        return None

    @property
    def credential(self) -> Optional[bytes]:
        """The auth section's credential string (no NUL), or None."""
        if not self.cred_len or not self.frame:
            return None
        return self.frame[self.cred_off:self.cred_off + self.cred_len - 1]

    @property
    def body(self) -> bytes:
        return self.frame[self.body_off:self.body_off + self.body_len]


def _addr(host: str, port: int = 0) -> Any:
    """An ``sa_serve_addr`` for a numeric IPv4/IPv6 address, or a unix path
    (host starting with "/" or port < 0)."""
    a = ffi.new("sa_serve_addr *")
    if host.startswith("/") or port < 0:
        path = host.encode()
        if not path or len(path) >= 108:
            raise ValueError(f"bad unix socket path {host!r}")
        a.family = AF_UNIX
        ffi.memmove(a.path, path, len(path))
        return a
    try:
        raw = socket.inet_pton(socket.AF_INET, host)
        a.family = AF_INET
    except OSError:
        raw = socket.inet_pton(socket.AF_INET6, host)
        a.family = AF_INET6
    ffi.memmove(a.addr, raw, len(raw))
    a.port = port
    return a


class ServeCore:
    """One serving core. ``config`` keys are the ``sa_serve_config`` fields
    (see csrc/serve.h); anything not given keeps the C default."""

    def __init__(self, max_events: int = 256, **config: int) -> None:
        cfg = ffi.new("sa_serve_config *")
        lib.sa_serve_config_init(cfg)
        for k, v in config.items():
            if k not in _CONFIG_FIELDS:
                raise TypeError(f"unknown serve config field {k!r}")
            setattr(cfg, k, v)
        self.config: Dict[str, int] = {k: getattr(cfg, k) for k in _CONFIG_FIELDS}
        srv = lib.sa_serve_new(cfg)
        if srv == ffi.NULL:
            err = ffi.errno
            raise ServeError(f"sa_serve_new: cannot start the serving core "
                             f"({errno.errorcode.get(err, err)})", status=lib.SA_E_SERVE_SYS,
                             sys_errno=err)
        self._srv = ffi.gc(srv, lib.sa_serve_free)
        self._events = ffi.new("sa_serve_event[]", max_events)
        self._max_events = max_events
        self._keys: Tuple[Any, ...] = ()   # keeps the C key set alive while in use
        self._stats = ffi.new("sa_serve_stats *")
        self._lat_counts = ffi.new("uint64_t[]", 1)
        self._rate_table: Optional[RateTable] = None

    def _check(self, what: str, rc: int) -> None:
        if rc != 0:
            e = error_for_status(rc, what)
            if rc == lib.SA_E_SERVE_SYS and isinstance(e, ServeError):
                e.sys_errno = err = lib.sa_serve_errno(self._srv)
                e.args = (f"{e.args[0]} ({errno.errorcode.get(err, err)})",)
            raise e

    # -- setup ---------------------------------------------------------------

    def listen_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        """Listen on host:port; returns the bound port (port 0 = ephemeral)."""
        bound = ffi.new("uint16_t *")
        self._check("listen_tcp", lib.sa_serve_listen_tcp(self._srv, host.encode(), port, bound))
        return int(bound[0])

    def listen_unix(self, path: str) -> None:
        self._check("listen_unix", lib.sa_serve_listen_unix(self._srv, path.encode()))

    def stop_listening(self) -> None:
        """Accept no new connection; those open are served to the end (a drain)."""
        self._check("stop_listening", lib.sa_serve_stop_listening(self._srv))

    def set_keys(self, snapshot: Any, policy: Any, bh_flags: int) -> None:
        """Verify auth/slurm frames with the keys of ``snapshot`` (a ``KeySnapshot``, kept
        alive here while the core uses its C key set), ``policy`` (an ``sc_policy *``:
        verifier uid, contexts, token size, "id" reading) and the body-hash policy
        ``bh_flags`` (SA_BH_*). Call it again with a new snapshot after a reload."""
        self._check("set_keys", lib.sa_serve_set_keys(self._srv, snapshot.keyset, policy, bh_flags))
        self._keys = (snapshot, policy)

    def approve_identity(self, digest: bytes) -> None:
        """The identity of an EV_VERIFIED event with ``objects == OBJ_ID`` (its
        ``id_digest``) is well formed: later tokens carrying the same "id" bytes stay on the
        core's fast path."""
        if type(digest) is not bytes or len(digest) != 32:
            raise ValueError("digest must be the 32 bytes of an event's id_digest")
        self._check("approve_identity", lib.sa_serve_approve_identity(self._srv, digest))

    # -- the loop --------------------------------------------------------------

    def poll_raw(self, timeout_ms: int) -> int:
        """Run the loop; returns how many events are in :attr:`raw_events`
        (zero-copy access: frame pointers stay valid until each is answered)."""
        n = lib.sa_serve_poll(self._srv, timeout_ms, self._events, self._max_events)
        if n < 0:
            raise OSError(ffi.errno, "sa_serve_poll failed")
        return int(n)

    @property
    def raw_events(self) -> Any:
        return self._events

    def poll(self, timeout_ms: int = 1000) -> List[ServeEvent]:
        """Run the loop until events are ready or ``timeout_ms`` passes."""
        return [self.event(k) for k in range(self.poll_raw(timeout_ms))]

    def event(self, k: int) -> ServeEvent:
        """Raw event ``k`` of the last :meth:`poll_raw` as a :class:`ServeEvent` (the frame
        copied out)."""
        e = self._events[k]
        frame = ffi.buffer(e.frame, e.frame_len)[:] if e.frame != ffi.NULL else b""
        return ServeEvent(
            conn_id=e.conn_id, kind=e.kind, status=e.status, sys_errno=e.sys_errno,
            plugin=e.plugin, uid=e.uid, gid=e.gid, objects=e.objects,
            id_digest=bytes(ffi.buffer(e.id_digest, 32)), msg_type=e.msg_type, version=e.version,
            flags=e.flags, listener=e.listener, peer_family=e.peer_family,
            peer_port=e.peer_port, peer_addr=bytes(ffi.buffer(e.peer_addr, 16)),
            frame=frame, cred_off=e.cred_off, cred_len=e.cred_len, user_off=e.user_off,
            user_len=e.user_len, body_off=e.body_off, body_len=e.body_len,
            reply_len=e.reply_len, upstream_ns=e.upstream_ns)

    @staticmethod
    def peer_key(e: Any) -> Tuple[int, bytes, int]:
        """(family, address bytes, port) of a raw event's peer, cheaply (no text)."""
        fam = e.peer_family
        n = 4 if fam == AF_INET else 16 if fam == AF_INET6 else 0
        return fam, ffi.buffer(e.peer_addr, n)[:], e.peer_port

    def wakeup(self) -> None:
        """Make a blocked :meth:`poll` return (any thread)."""
        lib.sa_serve_wakeup(self._srv)

    # -- answers -------------------------------------------------------------------

    def reply(self, conn_id: int, data: bytes, close_after: bool = True) -> None:
        self._check("reply", lib.sa_serve_reply(self._srv, conn_id, data, len(data),
                                                1 if close_after else 0))

    def close(self, conn_id: int) -> None:
        self._check("close", lib.sa_serve_close(self._srv, conn_id))

    def forward(self, conn_id: int, upstream: Optional[Tuple[str, int]] = None, *,
                source: Optional[str] = None, bind_peer: bool = False,
                transparent: bool = False) -> None:
        """Relay the connection's frame to ``upstream`` ((ip, port), or (path, -1)
        for a unix socket; None: the one of :meth:`set_upstream`, from the
        address it says) and its reply back; the outcome comes as an
        EV_FORWARD_DONE (when configured) or EV_FORWARD_ERROR event."""
        up = ffi.NULL if upstream is None else _addr(*upstream)
        src = _addr(source) if source is not None else ffi.NULL
        flags = (FWD_BIND_PEER if bind_peer else 0) | (FWD_TRANSPARENT if transparent else 0)
        self._check("forward", lib.sa_serve_forward(self._srv, conn_id, up, src, flags))

    def set_upstream(self, host: str, port: int, source: int = 0) -> None:
        """The upstream :meth:`forward` (without one) and auto-forward relay to: a numeric
        address, or a unix path with port -1; ``source`` (SRC_* flags) says whose address
        it sees."""
        self._check("set_upstream", lib.sa_serve_set_upstream(self._srv, _addr(host, port), source))

    def set_auto_forward(self, on: bool, rate_table: Optional[RateTable] = None) -> None:
        """Forward verified auth/slurm frames to the configured upstream in C, after the
        rate limit of ``rate_table`` (None: no limit), without an event each (over-limit
        ones answered rc 1804, an EV_RATE_LIMITED when rl_log_freq says to log). The
        table is kept alive here while the core uses it."""
        rl = rate_table.cdata if (on and rate_table is not None) else ffi.NULL
        self._check("set_auto_forward", lib.sa_serve_set_auto_forward(self._srv, 1 if on else 0, rl))
        self._rate_table = rate_table if on else None

    def stats(self) -> Dict[str, int]:
        lib.sa_serve_get_stats(self._srv, self._stats)
        return {name: int(getattr(self._stats, name)) for name in _STATS_FIELDS}

    def set_latency_buckets(self, bounds_s: Sequence[float]) -> None:
        """Count each relayed reply's upstream time into buckets with these ascending upper
        bounds (seconds; at most SA_SERVE_LAT_MAX_BUCKETS), in C: no event per reply."""
        bounds = [round(b * 1e9) for b in bounds_s]
        self._check("set_latency_buckets",
                    lib.sa_serve_set_latency_buckets(self._srv, bounds, len(bounds)))
        self._lat_counts = ffi.new("uint64_t[]", len(bounds) + 1)

    def latency(self) -> Tuple[List[int], int]:
        """(replies per bucket, the last one above every bound; their total time in ns)."""
        total = ffi.new("uint64_t *")
        n = lib.sa_serve_get_latency(self._srv, self._lat_counts, total)
        return [int(x) for x in self._lat_counts[0:n + 1]], int(total[0])

    def free(self) -> None:
        """Close everything now (otherwise done when the object is collected)."""
        srv, self._srv = self._srv, None
        if srv is not None:
            ffi.gc(srv, None)          # detach the destructor: freed here, once
            lib.sa_serve_free(srv)


__all__ = ["ServeCore", "ServeEvent", "ServeError", "EV_VERIFIED", "EV_UNVERIFIED",
           "EV_REFUSED", "EV_CLOSED", "EV_FORWARD_DONE", "EV_FORWARD_ERROR", "EV_RATE_LIMITED",
           "OBJ_ID", "REFUSE_RC", "REFUSE_CLOSE", "REFUSE_REPORT", "SRC_ALL", "SRC_LOOPBACK",
           "SRC_REMOTE"]
