"""Thin binding of the SACK kiosk's C serving loop (``csrc/sack_serve.h``):
no policy here.

:class:`SackCore` owns one ``sa_sack`` serving a listening unix socket the
caller bound. The driver calls :meth:`SackCore.poll` in a loop (the C call
runs without the GIL), answers each request event with :meth:`reply` or
:meth:`close`, and sets what C may sign with :meth:`set_create` (again after
a key reload). Not thread-safe: one thread drives it; :meth:`wakeup` is the
only call another thread may make.
"""
from __future__ import annotations

import errno
import threading
from typing import Any, Dict, List, NamedTuple, Optional

from ..exceptions import ServeError
from ._ffi import ffi, lib
from .status import error_for_status

EV_REQUEST = lib.SA_SACK_EV_REQUEST
EV_UID_CAP = lib.SA_SACK_EV_UID_CAP
EV_BAD_RPC = lib.SA_SACK_EV_BAD_RPC
EV_PEERCRED = lib.SA_SACK_EV_PEERCRED
EV_ACCEPT = lib.SA_SACK_EV_ACCEPT

_STATS_FIELDS = tuple(name for name, _ in ffi.typeof("sa_sack_stats").fields)
_E_CONN = lib.SA_E_SERVE_CONN


class SackEvent(NamedTuple):
    """One event of :meth:`SackCore.poll`; ``body`` is a copy of a request's
    body (after the 10-byte header), ``b""`` for the other kinds."""

    kind: int
    conn_id: int
    pid: int
    uid: int
    gid: int
    rpc: int
    version: int
    held: int
    sys_errno: int
    body: bytes


class SackCore:
    """The C loop over ``listen_fd`` (bound and listening; never closed here);
    a write to ``wake_fd`` (nonblocking, e.g. one end of a socketpair; -1: none)
    makes :meth:`poll` return."""

    def __init__(self, listen_fd: int, *, wake_fd: int = -1, max_conns: int, max_per_uid: int, max_request: int,
                 read_timeout: float, request_timeout: float, max_events: int = 128) -> None:
        cfg = ffi.new("sa_sack_config *")
        cfg.listen_fd = listen_fd
        cfg.wake_fd = wake_fd
        cfg.max_conns = max_conns
        cfg.max_per_uid = max_per_uid
        cfg.max_request = max_request
        cfg.read_ns = max(1, round(read_timeout * 1e9))
        cfg.request_ns = max(cfg.read_ns, round(request_timeout * 1e9))
        s = lib.sa_sack_new(cfg)
        if s == ffi.NULL:
            err = ffi.errno
            raise ServeError(f"sa_sack_new: cannot start the kiosk loop "
                             f"({errno.errorcode.get(err, err)})", status=lib.SA_E_SERVE_SYS,
                             sys_errno=err)
        self._s: Any = ffi.gc(s, lib.sa_sack_free)
        self._events = ffi.new("sa_sack_event[]", max_events)
        self._max_events = max_events
        self._stats = ffi.new("sa_sack_stats *")
        self._keys: Any = None   # the KeySnapshot whose C key set the loop signs with
        self._free_lock = threading.Lock()   # open_count (any thread) against free

    def _check(self, what: str, rc: int) -> None:
        if rc != 0:
            raise error_for_status(rc, what)

    def set_uid_cap(self, uid: int, cap: int) -> None:
        self._check("set_uid_cap", lib.sa_sack_set_uid_cap(self._s, uid, cap))

    def set_create(self, snapshot: Any, ttl: int, version: int, cluster: Optional[bytes],
                   host: bytes) -> None:
        """Sign well-formed SACK_CREATE requests in C with ``snapshot``'s keys (a
        ``KeySnapshot``, kept alive here while C uses it); None: hand them all up."""
        if snapshot is None:
            self._check("set_create", lib.sa_sack_set_create(self._s, 0, ffi.NULL, 0, 0, ffi.NULL,
                                                             0, ffi.NULL, 0))
        else:
            self._check("set_create", lib.sa_sack_set_create(
                self._s, 1, snapshot.keyset, ttl, version,
                ffi.NULL if cluster is None else cluster, 0 if cluster is None else len(cluster),
                host, len(host)))
        self._keys = snapshot

    def set_identities(self, on: bool) -> None:
        """use_client_ids: sign SACK_CREATE in C only with a cached identity (on);
        either way the cache is emptied."""
        self._check("set_identities", lib.sa_sack_set_identities(self._s, 1 if on else 0))

    def set_identity(self, uid: int, gid: int, members: bytes, ttl: float) -> None:
        """Cache the extra member records (``"id"``; b"": none) signed for (uid, gid)
        for ``ttl`` seconds."""
        self._check("set_identity", lib.sa_sack_set_identity(self._s, uid, gid, members,
                                                             len(members), round(ttl * 1e9)))

    def clear_identities(self) -> None:
        lib.sa_sack_clear_identities(self._s)

    def poll(self, timeout_ms: int) -> List[SackEvent]:
        """Run the loop until events are ready or ``timeout_ms`` passes."""
        n = lib.sa_sack_poll(self._s, timeout_ms, self._events, self._max_events)
        if n < 0:
            raise OSError(ffi.errno, "sa_sack_poll failed")
        out = []
        for k in range(n):
            e = self._events[k]
            body = ffi.buffer(e.body, e.body_len)[:] if e.body != ffi.NULL else b""
            out.append(SackEvent(e.kind, e.conn_id, e.pid, e.uid, e.gid, e.rpc, e.version, e.held,
                                 e.sys_errno, body))
        return out

    def wakeup(self) -> None:
        """Make a blocked :meth:`poll` return (any thread)."""
        lib.sa_sack_wakeup(self._s)

    def reply(self, conn_id: int, data: bytes) -> bool:
        """Write ``data`` and close; False when the connection is gone (its deadline passed)."""
        rc = lib.sa_sack_reply(self._s, conn_id, data, len(data))
        if rc == _E_CONN:
            return False
        self._check("reply", rc)
        return True

    def close(self, conn_id: int) -> None:
        """Close without a reply (a connection already gone is fine)."""
        rc = lib.sa_sack_close(self._s, conn_id)
        if rc != _E_CONN:
            self._check("close", rc)

    def stats(self) -> Dict[str, int]:
        lib.sa_sack_get_stats(self._s, self._stats)
        return {name: int(getattr(self._stats, name)) for name in _STATS_FIELDS}

    def open_count(self) -> int:
        """Connections open now (any thread; 0 once freed)."""
        with self._free_lock:
            return 0 if self._s is None else int(lib.sa_sack_open_count(self._s))

    def uid_counts(self) -> Dict[int, int]:
        """Connections held now, per peer uid."""
        n = lib.sa_sack_uid_counts(self._s, ffi.NULL, ffi.NULL, 0)
        uids = ffi.new("uint32_t[]", max(n, 1))
        counts = ffi.new("uint32_t[]", max(n, 1))
        got = lib.sa_sack_uid_counts(self._s, uids, counts, n)
        return {int(uids[i]): int(counts[i]) for i in range(min(n, got))}

    def free(self) -> None:
        """Close every connection now (otherwise done when the object is collected)."""
        with self._free_lock:
            s, self._s = self._s, None
        if s is not None:
            ffi.gc(s, None)
            lib.sa_sack_free(s)
        self._keys = None


__all__ = ["EV_ACCEPT", "EV_BAD_RPC", "EV_PEERCRED", "EV_REQUEST", "EV_UID_CAP", "SackCore",
           "SackEvent"]
