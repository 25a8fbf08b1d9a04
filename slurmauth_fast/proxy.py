"""An authenticating, rate-limiting front for slurmctld.

Every request is verified before it can reach slurmctld (auth/slurm in the C serving core as
its bytes arrive, before its body is read; auth/munge through munged off the loop; auth/jwt
here), then rate-limited per uid exactly as slurmctld's ``rl_*`` does
(:mod:`slurmauth_fast.ratelimit`), then relayed byte for byte to slurmctld on a new
connection, and the reply relayed back. The settings are decided here; a verified auth/slurm
request is then rate-limited and forwarded by the serving core itself, with no Python per
request (its table is the one :attr:`ControllerProxy.limiter` checks for the other plugins). Forged, expired and replayed credentials get rc 1007
from the proxy, as slurmctld would answer them, and never reach it; an over-limit request
gets RESPONSE_SLURM_RC with SLURMCTLD_COMMUNICATIONS_BACKOFF (1804), as from slurmctld, and
real clients sleep and retry.

Transparency: slurmctld takes a request's TCP peer address (not the header's orig_addr) as
the client's address for allocation callbacks (salloc/srun resp_host, job_will_run), for
dynamic and cloud nodes registering, for its sackd registry and its logs. The proxy therefore
opens each upstream connection from the client's own address: bound to it before connecting
(any 127.0.0.0/8 address works unprivileged), and for remote clients with IP_TRANSPARENT,
which needs CAP_NET_ADMIN and policy routing that sends slurmctld's replies back through the
proxy host (as HAProxy's ``usesrc clientip``). ``transparent``:

- ``"on"``: always (refuses to start without CAP_NET_ADMIN);
- ``"auto"``: loopback clients by a plain bind, remote clients with IP_TRANSPARENT when the
  process may set it, else from the proxy's address (said once at start);
- ``"off"``: from the proxy's address; the start-up log names what that breaks.
"""
from __future__ import annotations

import errno
import logging
import socket
from typing import Callable, Iterable, Optional, Tuple, Union

from ._bindings.serve import SRC_ALL, SRC_LOOPBACK, SRC_REMOTE, ServeCore, ServeEvent
from .exceptions import ServeError
from .frame_verifier import FrameVerifier
from .frontend import PLUGIN_NAMES, SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR, FrontEnd, Request
from .metrics import LATENCY_BUCKETS, FrontEndMetrics
from .ratelimit import SLURMCTLD_COMMUNICATIONS_BACKOFF, RateLimitConfig, RateLimiter

log = logging.getLogger("slurmauth_fast.proxy")

TRANSPARENCY_MODES = ("auto", "on", "off")
#: What slurmctld loses when it sees the proxy's address instead of the client's.
TRANSPARENCY_LOSSES = ("salloc/srun allocation callbacks (resp_host)", "job_will_run replies",
                       "registration of dynamic and cloud nodes", "the sackd registry",
                       "client addresses in slurmctld's logs (AuditRPCs)")
_IP_TRANSPARENT = getattr(socket, "IP_TRANSPARENT", 19)

Address = Union[Tuple[str, int], str]


def can_set_ip_transparent() -> bool:
    """Whether this process may set IP_TRANSPARENT (CAP_NET_ADMIN)."""
    with socket.socket() as s:
        try:
            s.setsockopt(socket.SOL_IP, _IP_TRANSPARENT, 1)
        except OSError as e:
            if e.errno in (errno.EPERM, errno.EACCES, errno.ENOPROTOOPT):
                return False
            raise
    return True


class ControllerProxy(FrontEnd):
    """Verifies (as ``verifier`` decides), rate-limits (``rate_limit``, Slurm's rl_*) and
    relays RPCs to ``upstream`` ((host, port), or a unix socket path). Run it with
    :meth:`serve_forever` on one thread; :meth:`reload`, :meth:`stop` may be called from
    others (the CLI's signal handlers use them), :meth:`drain` after the loop ends."""

    def __init__(self, verifier: FrameVerifier, upstream: Address, *,
                 rate_limit: RateLimitConfig = RateLimitConfig(), slurm_user_uid: int = 0,
                 exempt_msg_types: Iterable[int] = (), transparent: str = "auto",
                 core: Optional[ServeCore] = None, metrics: bool = True,
                 conf_loader: Optional[Callable[[], RateLimitConfig]] = None,
                 rate_clock: Optional[Callable[[], float]] = None,
                 **core_config: int) -> None:
        if transparent not in TRANSPARENCY_MODES:
            raise ValueError(f"transparent must be one of {TRANSPARENCY_MODES}, not {transparent!r}")
        # the upstream time is counted in C (set_latency_buckets): no event per relayed reply
        core_config.setdefault("report_forward_done", 0)
        super().__init__(verifier, core, logger=log, **core_config)
        self.upstream: Tuple[str, int] = (upstream, -1) if isinstance(upstream, str) else upstream
        self.upstream_is_unix = isinstance(upstream, str)
        self.transparent = transparent
        self.may_set_transparent = can_set_ip_transparent() if transparent != "off" else False
        if transparent == "on" and not self.may_set_transparent:
            raise PermissionError("--transparent on needs CAP_NET_ADMIN (IP_TRANSPARENT)")
        self.core.set_upstream(*self.upstream, source=self._source_policy())
        self.slurm_user_uid = slurm_user_uid
        self.exempt_msg_types = frozenset(exempt_msg_types)
        self._rate_clock = rate_clock
        self._conf_loader = conf_loader
        self.metrics: Optional[FrontEndMetrics] = None
        if metrics:
            self.core.set_latency_buckets(LATENCY_BUCKETS)
            self.metrics = FrontEndMetrics(self.core.stats, lambda: self.limiter.top_over_limit(),
                                           self.core.latency)
        self._use_limiter(RateLimiter(rate_limit, slurm_user_uid=slurm_user_uid,
                                      exempt_msg_types=self.exempt_msg_types, clock=rate_clock))
        self.announce_transparency()

    @property
    def limiter(self) -> RateLimiter:
        """The rate limit in force (replaced on reload when the rl_* settings change)."""
        return self._limiter

    def _use_limiter(self, limiter: RateLimiter) -> None:
        """Put ``limiter`` in force (before the loop runs, or on its thread). On the wall
        clock the core forwards verified auth/slurm requests itself after this limiter's
        table; with another clock (tests) they come up and are decided in :meth:`admit`."""
        self._limiter = limiter
        self.core.set_auto_forward(limiter.wall_clock, limiter.table)

    # -- start-up ------------------------------------------------------------------

    def announce_transparency(self) -> None:
        if self.upstream_is_unix:
            log.warning("upstream is a unix socket: slurmctld sees no client address")
        elif self.transparent == "off":
            log.warning("transparency off: slurmctld sees the proxy's address for every client, "
                        "which breaks %s", ", ".join(TRANSPARENCY_LOSSES))
        elif self.transparent == "on":
            log.warning("transparency on: upstream connections come from each client's address "
                        "(IP_TRANSPARENT; replies must route back through this host)")
        elif self.may_set_transparent:
            log.warning("transparency auto: loopback clients by bind, remote clients by "
                        "IP_TRANSPARENT")
        else:
            log.warning("transparency auto: loopback clients by bind; remote clients come from "
                        "the proxy's address (no CAP_NET_ADMIN for IP_TRANSPARENT), which breaks "
                        "%s for them", ", ".join(TRANSPARENCY_LOSSES))

    # -- policy ---------------------------------------------------------------------

    def _source_policy(self) -> int:
        """Whose address slurmctld sees (the core applies it per client: SRC_* flags)."""
        if self.upstream_is_unix or self.transparent == "off":
            return 0
        if self.transparent == "on":
            return SRC_ALL
        return SRC_LOOPBACK | (SRC_REMOTE if self.may_set_transparent else 0)

    def admit(self, req: Request) -> None:
        """A request verified outside the core's auto-forward (auth/munge, auth/jwt, or any
        when the rate limit runs on another clock): the same rate limit, then the relay."""
        plugin = PLUGIN_NAMES.get(req.plugin, str(req.plugin))
        exceeded, log_it = self._limiter.check(req.uid, req.msg_type)
        if exceeded:
            if log_it:
                self._log_rate_limited(req.uid, req.msg_type, req.peer)
            self._count("rate_limited", plugin)
            self.reply_rc(req.conn_id, SLURMCTLD_COMMUNICATIONS_BACKOFF, req.version)
            return
        try:
            self.core.forward(req.conn_id)
        except ServeError as e:
            self.limited_log.warning("forward", "cannot forward: %s", e)
            self._count("upstream_error", plugin)
            self.reply_rc(req.conn_id, SLURMCTLD_COMMUNICATIONS_CONNECTION_ERROR, req.version)
            return
        self._count("forwarded", plugin)

    def on_rate_limited(self, ev: ServeEvent) -> None:
        self._log_rate_limited(ev.uid, ev.msg_type, ev.peer)

    @staticmethod
    def _log_rate_limited(uid: int, msg_type: int, peer: Optional[Tuple[str, int]]) -> None:
        log.info("RPC rate limit exceeded by uid %u with msg_type %d from %s, telling to back "
                 "off", uid, msg_type, f"{peer[0]}:{peer[1]}" if peer else "unix")

    def on_forward_error(self, ev: ServeEvent) -> None:
        self._count("upstream_error", PLUGIN_NAMES.get(ev.plugin, str(ev.plugin)))
        super().on_forward_error(ev)

    def on_refused(self, ev: ServeEvent, plugin: int, reason: str) -> None:
        self._count("refused", PLUGIN_NAMES.get(plugin, str(plugin)))

    def on_verify_time(self, plugin: int, seconds: float) -> None:
        if self.metrics is not None:
            self.metrics.verify.labels(PLUGIN_NAMES.get(plugin, str(plugin))).observe(seconds)

    def _count(self, outcome: str, plugin: str) -> None:
        if self.metrics is not None:
            self.metrics.count(outcome, plugin)

    # -- reload ---------------------------------------------------------------------

    def reload_settings(self) -> Optional[RateLimitConfig]:
        return self._conf_loader() if self._conf_loader is not None else None

    def apply_settings(self, settings: Optional[RateLimitConfig]) -> None:
        if settings is not None and settings != self.limiter.config:
            self._use_limiter(RateLimiter(settings, slurm_user_uid=self.slurm_user_uid,
                                          exempt_msg_types=self.exempt_msg_types,
                                          clock=self._rate_clock))


__all__ = ["TRANSPARENCY_LOSSES", "TRANSPARENCY_MODES", "ControllerProxy", "can_set_ip_transparent"]
