"""The serving loop shared by the shim and the proxy: the C serving core reads and verifies
frames, this class dispatches what it hands up and carries out the answer a subclass decides.

Everything is decided by one :class:`~slurmauth_fast.frame_verifier.FrameVerifier`, configured
like slurmctld (``FrameVerifier.from_slurm_conf``):

- auth/slurm (103) frames arrive verified by the core with that verifier's keys and policy
  (signature, claims, body hash, HashPlugin, use_client_ids); a forged or unverifiable one
  never gets here: the core answers it with rc 1007 and counts it, as slurmctld does. A token
  carrying an object the policy reads (the "id" identity under use_client_ids) is checked by
  the core as JSON only, so such a frame comes up and the verifier decides it here, in the
  loop (slurmctld refuses a malformed identity, and a "gids" string kills slurmctld 26.05.3);
  an identity found well formed is approved in the core, which keeps later tokens carrying
  the same "id" bytes on its fast path;
- auth/munge (101) frames are verified on a small thread pool, off the loop (a decode is a
  round trip to munged); the result comes back through a queue and a core wakeup;
- auth/jwt (102) frames are verified here, in the loop;
- a frame without credential gets rc 1007; a frame of a plugin the configuration does not
  accept (AuthType + AuthAltTypes) is closed unanswered.

A subclass implements :meth:`FrontEnd.admit`, which gets each authenticated request and
answers it through :meth:`reply_rc`, :meth:`ServeCore.forward` or :meth:`ServeCore.close`.
:meth:`FrontEnd.reload` re-reads the keys off the loop (a key file that blocks or fails
never stalls serving) and swaps them into the core on the loop.
"""
from __future__ import annotations

import collections
import logging
import queue
import socket
import struct
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Deque, NamedTuple, Optional, Tuple

from ._loglimit import LogLimiter
from ._bindings.serve import (
    AF_INET,
    EV_CLOSED,
    EV_FORWARD_ERROR,
    EV_RATE_LIMITED,
    EV_UNVERIFIED,
    EV_VERIFIED,
    OBJ_ID,
    ServeCore,
    ServeEvent,
)
from ._bounded import BoundedCache
from .exceptions import ServeError, SlurmAuthError
from .frame import AUTH_JWT, AUTH_MUNGE, AUTH_SLURM, MSG_KEEP_BUFFER, NO_AUTH_CRED, PROTOCOL_VERSION, \
    RESPONSE_SLURM_RC, pack_frame
from .frame_verifier import FrameVerifier

SLURM_SUCCESS = 0
SLURM_UNEXPECTED_MSG_ERROR = 1000
SLURM_PROTOCOL_AUTHENTICATION_ERROR = 1007
SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR = 1800
#: The flags slurmctld puts on every reply (slurm_resp_msg_init()).
REPLY_FLAGS = NO_AUTH_CRED | MSG_KEEP_BUFFER

PLUGIN_NAMES = {AUTH_SLURM: "auth/slurm", AUTH_MUNGE: "auth/munge", AUTH_JWT: "auth/jwt"}
#: MUNGE decodes waiting at most; beyond this a munge frame is shed (closed).
MAX_MUNGE_PENDING = 1024
#: Seconds between the log lines that sum up what the core refused by itself.
REFUSAL_LOG_INTERVAL = 10.0


def rc_reply(rc: int, version: int) -> bytes:
    """RESPONSE_SLURM_RC as slurmctld sends it: unsigned, the requester's version."""
    return pack_frame(RESPONSE_SLURM_RC, struct.pack(">I", rc), flags=REPLY_FLAGS, version=version)


class Request(NamedTuple):
    """An authenticated request: who sent it (uid/gid as its plugin established them), what,
    from where (None for a unix-socket client). A tuple: one is built per request."""

    conn_id: int
    plugin: int
    uid: int
    gid: int
    msg_type: int
    version: int
    peer: Optional[Tuple[str, int]]


class FrontEnd:
    """Drives a :class:`ServeCore` with the decisions of ``verifier`` (see the module doc)."""

    def __init__(self, verifier: FrameVerifier, core: Optional[ServeCore] = None, *,
                 munge_workers: int = 4, logger: Optional[logging.Logger] = None,
                 **core_config: int) -> None:
        self.verifier = verifier
        if core is None:
            lo, hi = verifier.version_range
            core = ServeCore(min_version=lo, max_version=hi, **core_config)
        self.core = core
        self.log = logger or logging.getLogger("slurmauth_fast.frontend")
        self.limited_log = LogLimiter(self.log)
        self._munge_pool: Optional[ThreadPoolExecutor] = None
        self._munge_workers = munge_workers
        self._munge_pending = 0
        self._done: "queue.SimpleQueue[Tuple[ServeEvent, Any]]" = queue.SimpleQueue()
        self._calls: Deque[Callable[[], None]] = collections.deque()
        self._calls_lock = threading.Lock()
        self._stop = threading.Event()
        self._reload_lock = threading.Lock()
        self._peer_text: BoundedCache[bytes, str] = BoundedCache(4096)
        self._refusals_logged = (0, 0)     # the core's refused / malformed counts last logged
        self._refusals_at = time.monotonic()
        self._set_keys()

    def _set_keys(self) -> None:
        if self.verifier.slurm is not None:
            self.core.set_keys(*self.verifier.c_state())

    # -- what a subclass decides ------------------------------------------------------

    def admit(self, req: Request) -> None:
        raise NotImplementedError

    def on_forward_error(self, ev: ServeEvent) -> None:
        """The upstream failed: the client gets SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR."""
        self.reply_rc(ev.conn_id, SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR, ev.version)

    def on_refused(self, ev: ServeEvent, plugin: int, reason: str) -> None:
        """A credential the core handed up (munge, jwt, or auth/slurm with an identity), or a
        frame without one, was refused and answered rc 1007."""

    def on_rate_limited(self, ev: ServeEvent) -> None:
        """The core answered an over-limit request itself (auto-forward); rl_log_freq says
        this one is to be logged."""

    def on_verify_time(self, plugin: int, seconds: float) -> None:
        """A credential verified outside the core (munge, jwt, auth/slurm with an identity)
        took ``seconds`` (any thread)."""

    # -- answers -----------------------------------------------------------------------

    def reply_rc(self, conn_id: int, rc: int, version: int) -> None:
        try:
            self.core.reply(conn_id, rc_reply(rc, version or PROTOCOL_VERSION))
        except ServeError as e:           # the client is gone already
            self.log.debug("reply to connection %d: %s", conn_id, e)

    def call_soon(self, fn: Callable[[], None]) -> None:
        """Run ``fn`` on the loop's thread (from any thread), e.g. a key swap after a reload."""
        with self._calls_lock:
            self._calls.append(fn)
        self.core.wakeup()

    def reload(self) -> None:
        """Re-read the keys (and :meth:`reload_settings`) on a thread of its own, then swap
        them in on the loop. A bad file keeps what is in force, and says so."""
        def work() -> None:
            with self._reload_lock:
                try:
                    if self.verifier.slurm is not None:
                        self.verifier.slurm.keyring.reload()
                    settings = self.reload_settings()
                except (SlurmAuthError, OSError) as e:
                    self.log.error("reload failed, keeping the current keys: %s", e)
                    return

                def swap() -> None:
                    self._set_keys()
                    self.apply_settings(settings)
                    self.log.warning("keys reloaded")
                self.call_soon(swap)
        threading.Thread(target=work, name="slurmauth-reload", daemon=True).start()

    def reload_settings(self) -> Any:
        """Off the loop, on reload: read what else a subclass re-reads (default: nothing)."""
        return None

    def apply_settings(self, settings: Any) -> None:
        """On the loop, after a reload: put :meth:`reload_settings`' result in force."""

    # -- the loop ------------------------------------------------------------------------

    def stop(self) -> None:
        """Make :meth:`serve_forever` return (from any thread or a signal handler)."""
        self._stop.set()
        self.core.wakeup()

    def serve_forever(self, poll_ms: int = 1000) -> None:
        while not self._stop.is_set():
            self.run_once(poll_ms)

    def drain(self, timeout: float = 10.0, poll_ms: int = 50) -> bool:
        """Stop accepting and serve what is in flight until nothing is, or ``timeout``
        passes; True when everything in flight was finished."""
        self.core.stop_listening()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.core.stats()["conns_open"] == 0 and self._munge_pending == 0:
                return True
            self.run_once(poll_ms)
        return False

    def run_once(self, poll_ms: int = 1000) -> int:
        core = self.core
        n = core.poll_raw(poll_ms)
        raw = core.raw_events
        for k in range(n):
            e = raw[k]
            if e.kind == EV_VERIFIED and not e.objects:   # the common case, straight from C
                self.admit(Request(e.conn_id, AUTH_SLURM, e.uid, e.gid, e.msg_type, e.version,
                                   self._peer(e)))
            else:
                self._dispatch(core.event(k))
        self._finish_munge()
        while self._calls:
            with self._calls_lock:
                fn = self._calls.popleft()
            fn()
        if time.monotonic() - self._refusals_at >= REFUSAL_LOG_INTERVAL:
            self.log_core_refusals()
        return n

    def _peer(self, e: Any) -> Optional[Tuple[str, int]]:
        """The (ip, port) of a raw event's TCP peer (None for unix), the text cached per address."""
        fam, addr, port = self.core.peer_key(e)
        if not addr:
            return None
        ip = self._peer_text.get(addr)
        if ip is None:
            ip = socket.inet_ntop(socket.AF_INET if fam == AF_INET else socket.AF_INET6, addr)
            self._peer_text.put(addr, ip)
        return ip, port

    def log_core_refusals(self) -> None:
        """One line for what the core refused by itself since the last line (auth/slurm
        credentials answered rc 1007, frames closed as malformed): never one per frame."""
        st = self.core.stats()
        now = (st["frames_refused"], st["frames_malformed"])
        refused, malformed = (now[0] - self._refusals_logged[0], now[1] - self._refusals_logged[1])
        if refused or malformed:
            self.log.warning("the serving core refused %d auth/slurm credentials (rc 1007) and "
                             "closed %d malformed frames since the last report", refused, malformed)
        self._refusals_logged = now
        self._refusals_at = time.monotonic()

    def _dispatch(self, ev: ServeEvent) -> None:
        """Every event but a plain EV_VERIFIED (run_once admits those from the raw C event)."""
        kind = ev.kind
        if kind == EV_VERIFIED:
            # the token carries objects the policy reads ("id" under use_client_ids), which
            # the core checks as JSON only: the verifier decides, as for verify_rpc. An
            # identity it accepts is a pure function of the object's bytes, so the core
            # keeps tokens carrying the same "id" on its fast path from now on.
            result = self._verify(ev)
            if ev.objects == OBJ_ID and not isinstance(result, SlurmAuthError):
                self.core.approve_identity(ev.id_digest)
            self._admit_verified(ev, result)
        elif kind == EV_UNVERIFIED:
            self._unverified(ev)
        elif kind == EV_FORWARD_ERROR:
            self.limited_log.warning("upstream", "upstream failed: status %d errno %d",
                                     ev.status, ev.sys_errno)
            self.on_forward_error(ev)
        elif kind == EV_RATE_LIMITED:
            self.on_rate_limited(ev)
        elif kind == EV_CLOSED:
            pass

    def _refuse(self, ev: ServeEvent, plugin: int, reason: str) -> None:
        self.limited_log.warning(f"refused:{plugin}", "%s: %s request refused: %s",
                                 _peer_text(ev), PLUGIN_NAMES.get(plugin, str(plugin)), reason)
        self.on_refused(ev, plugin, reason)
        self.reply_rc(ev.conn_id, SLURM_PROTOCOL_AUTHENTICATION_ERROR, ev.version)

    def _unverified(self, ev: ServeEvent) -> None:
        plugin = ev.plugin
        if plugin == 0 or ev.cred_len == 0:       # NO_AUTH_CRED, or a NULL credential
            self._refuse(ev, plugin, "no credential")
        elif plugin not in self.verifier.plugins:
            self.limited_log.warning(f"plugin:{plugin}", "%s: auth plugin %d is not configured: "
                                     "closed", _peer_text(ev), plugin)
            self.core.close(ev.conn_id)
        elif plugin == AUTH_MUNGE:
            self._start_munge(ev)
        else:
            self._admit_verified(ev, self._verify(ev))

    def _verify(self, ev: ServeEvent) -> Any:
        """The frame's credential, or the SlurmAuthError that refuses it."""
        started = time.perf_counter()
        try:
            return self.verifier.verify(ev.frame).credential
        except SlurmAuthError as e:
            return e
        finally:
            self.on_verify_time(ev.plugin, time.perf_counter() - started)

    def _admit_verified(self, ev: ServeEvent, result: Any) -> None:
        if isinstance(result, SlurmAuthError):
            self._refuse(ev, ev.plugin, f"{type(result).__name__}: {result}")
        else:
            self.admit(Request(ev.conn_id, ev.plugin, result.uid, result.gid, ev.msg_type,
                               ev.version, ev.peer))

    def _start_munge(self, ev: ServeEvent) -> None:
        if self._munge_pending >= MAX_MUNGE_PENDING:
            self.limited_log.warning("munge-backlog", "munged backlog full: request shed")
            self.core.close(ev.conn_id)
            return
        if self._munge_pool is None:
            self._munge_pool = ThreadPoolExecutor(self._munge_workers,
                                                  thread_name_prefix="slurmauth-munge")
        self._munge_pending += 1
        self._munge_pool.submit(self._munge_job, ev)

    def _munge_job(self, ev: ServeEvent) -> None:
        self._done.put((ev, self._verify(ev)))
        self.core.wakeup()

    def _finish_munge(self) -> None:
        while True:
            try:
                ev, result = self._done.get_nowait()
            except queue.Empty:
                return
            self._munge_pending -= 1
            self._admit_verified(ev, result)

    def close(self) -> None:
        """Finish the munged calls under way and free the core (listeners, connections)."""
        if self._munge_pool is not None:
            self._munge_pool.shutdown(wait=True)
            self._finish_munge()
        self.log_core_refusals()
        self.core.free()


def _peer_text(ev: ServeEvent) -> str:
    peer = ev.peer
    return f"{peer[0]}:{peer[1]}" if peer else "unix"


__all__ = ["FrontEnd", "LogLimiter", "PLUGIN_NAMES", "REPLY_FLAGS", "Request", "rc_reply"]
