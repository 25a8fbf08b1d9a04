"""Slurm's RPC rate limit (SlurmctldParameters=rl_enable), decided as slurmctld decides.

A token bucket per uid, after authentication: a uid's first request takes a bucket of
``rl_bucket_size`` tokens and spends one; every ``rl_refill_period`` seconds adds
``rl_refill_rate`` tokens (up to the bucket size), counted in whole periods of the wall
clock (``now / period``); a request with no token left is over the limit. Root and SlurmUser
are never limited, nor are message types marked exempt. Buckets live in an open-addressed
table of ``rl_table_size`` slots (slot ``uid % size``, then the next free one); when the
table is full a new uid is not limited (slurmctld logs that and lets it through). An
over-limit request is answered with RESPONSE_SLURM_RC carrying
SLURMCTLD_COMMUNICATIONS_BACKOFF (1804); Slurm clients sleep and retry.

``rl_log_freq`` throttles the "rate limit exceeded" log line per uid: -1 never logs, 0 logs
every time, N logs at most once per N seconds.
"""
from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

from ._bindings.ratelimit import EXCEEDED_LOG, PASS, RateTable
from .slurmconf import SlurmConf, SlurmConfError, conf_get_opt_str

#: The rc of the reply to an over-limit request.
SLURMCTLD_COMMUNICATIONS_BACKOFF = 1804
_U32 = 0xFFFFFFFF


def _positive(name: str, text: str) -> int:
    if not text.isdigit() or int(text) == 0 or int(text) > _U32:
        raise SlurmConfError(f"{name}={text} is invalid, must be a positive non-zero integer")
    return int(text)


@dataclass(frozen=True)
class RateLimitConfig:
    """The rl_* settings (Slurm's defaults); ``enabled`` is rl_enable."""

    enabled: bool = False
    table_size: int = 8192
    bucket_size: int = 30
    refill_rate: int = 2
    refill_period: int = 1
    log_freq: int = 0

    def __post_init__(self) -> None:
        for name in ("table_size", "bucket_size", "refill_rate", "refill_period"):
            value = getattr(self, name)
            if type(value) is not int or not 0 < value <= _U32:
                raise SlurmConfError(f"rl_{name}={value!r} is invalid, must be a positive "
                                     "non-zero integer")
        if type(self.log_freq) is not int or self.log_freq < -1:
            raise SlurmConfError(f"rl_log_freq={self.log_freq!r} is invalid, must be -1, 0, "
                                 "or a positive integer")

    @classmethod
    def from_slurmctld_parameters(cls, params: Optional[str]) -> "RateLimitConfig":
        """Read SlurmctldParameters as slurmctld's rate_limit_init() does: rl_enable
        anywhere (any case) enables it; ``rl_X=value`` elements set the rest."""
        if not params or "rl_enable" not in params.lower():
            return cls()
        values = {}
        for name in ("table_size", "bucket_size", "refill_rate", "refill_period"):
            text = conf_get_opt_str(params, f"rl_{name}=")
            if text is not None:
                values[name] = _positive(f"rl_{name}", text)
        log = conf_get_opt_str(params, "rl_log_freq=")
        if log is not None:
            try:
                values["log_freq"] = int(log)
            except ValueError:
                raise SlurmConfError(f"rl_log_freq={log} is invalid, must be -1, 0, or a "
                                     "positive integer") from None
        return cls(enabled=True, **values)

    @classmethod
    def from_slurm_conf(cls, conf: SlurmConf) -> "RateLimitConfig":
        return cls.from_slurmctld_parameters(conf.slurmctld_parameters)


class RateLimiter:
    """slurmctld's rate_limit_exceeded(), with the same table and arithmetic (in C,
    ``csrc/ratelimit.c``; the serving core decides with the same table).

    ``clock`` returns the wall-clock time in seconds; tests pass a fake one, and then the
    decisions are made only through :meth:`check` (the serving core's auto-forward reads
    the real clock, so a proxy with a fake clock decides in Python). Thread-safe."""

    def __init__(self, config: RateLimitConfig, *, slurm_user_uid: int = 0,
                 exempt_msg_types: Iterable[int] = (),
                 clock: Optional[Callable[[], float]] = None) -> None:
        self.config = config
        self.slurm_user_uid = slurm_user_uid
        self.exempt_msg_types = frozenset(exempt_msg_types)
        self.wall_clock = clock is None
        self._clock = time.time if clock is None else clock
        self.table: Optional[RateTable] = None
        if config.enabled:
            self.table = RateTable(table_size=config.table_size, bucket_size=config.bucket_size,
                                   refill_rate=config.refill_rate,
                                   refill_period=config.refill_period, log_freq=config.log_freq,
                                   slurm_user_uid=slurm_user_uid,
                                   exempt_msg_types=self.exempt_msg_types)

    def check(self, uid: int, msg_type: int) -> Tuple[bool, bool]:
        """(exceeded, log): whether this request is over the limit, and whether to log it
        (rl_log_freq)."""
        if self.table is None:
            return False, False
        decision = self.table.check(uid, msg_type, int(self._clock()))
        return decision != PASS, decision == EXCEEDED_LOG

    def exceeded(self, uid: int, msg_type: int) -> bool:
        return self.check(uid, msg_type)[0]

    @property
    def table_full(self) -> int:
        """Requests let through because no slot was free for their uid."""
        return self.table.table_full() if self.table is not None else 0

    @property
    def over_limit(self) -> "Counter[int]":
        """Refusals per uid (the uids of the table)."""
        if self.table is None:
            return Counter()
        return Counter(dict(self.table.top(self.config.table_size)))

    def top_over_limit(self, n: int = 10) -> List[Tuple[int, int]]:
        """The ``n`` uids refused most often: (uid, count), most first, then lower uid."""
        return self.table.top(n) if self.table is not None else []


__all__ = ["SLURMCTLD_COMMUNICATIONS_BACKOFF", "RateLimitConfig", "RateLimiter"]
