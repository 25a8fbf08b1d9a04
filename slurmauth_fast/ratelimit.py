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

import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Iterable, List, Optional, Tuple

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
    """slurmctld's rate_limit_exceeded(), with the same table and arithmetic.

    ``clock`` returns the wall-clock time in seconds (tests pass a fake one). Thread-safe.
    ``over_limit`` counts refusals per uid (for metrics); it holds at most ``table_size``
    uids, as the table does."""

    def __init__(self, config: RateLimitConfig, *, slurm_user_uid: int = 0,
                 exempt_msg_types: Iterable[int] = (),
                 clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.slurm_user_uid = slurm_user_uid
        self.exempt_msg_types = frozenset(exempt_msg_types)
        self._clock = clock
        self._lock = threading.Lock()
        size = config.table_size
        self._uid: List[int] = [0] * size          # 0: a free slot (root is never limited)
        self._last_update: List[int] = [0] * size
        self._tokens: List[int] = [0] * size
        self._last_logged: List[int] = [0] * size
        self.over_limit: Counter = Counter()
        self.table_full = 0                        # uids let through for lack of a slot

    def exempt(self, uid: int, msg_type: int) -> bool:
        return (not self.config.enabled or msg_type in self.exempt_msg_types
                or uid == 0 or uid == self.slurm_user_uid)

    def check(self, uid: int, msg_type: int) -> Tuple[bool, bool]:
        """(exceeded, log): whether this request is over the limit, and whether to log it
        (rl_log_freq)."""
        if self.exempt(uid, msg_type):
            return False, False
        cfg = self.config
        with self._lock:
            now = int(self._clock())
            size = cfg.table_size
            start = pos = uid % size
            while self._uid[pos] and self._uid[pos] != uid:
                pos += 1
                if pos == size:
                    pos = 0
                if pos == start:
                    pos = size
                    break
            if pos == size:
                self.table_full += 1
                return False, False
            if not self._uid[pos]:
                self._uid[pos] = uid
                self._last_update[pos] = now // cfg.refill_period
                self._tokens[pos] = cfg.bucket_size - 1
                return False, False
            periods = now // cfg.refill_period
            delta = periods - self._last_update[pos]
            self._last_update[pos] = periods
            if delta:
                # uint32 arithmetic, as in C (a clock stepping back wraps too)
                tokens = (self._tokens[pos] + delta * cfg.refill_rate) & _U32
                self._tokens[pos] = min(tokens, cfg.bucket_size)
            if self._tokens[pos]:
                self._tokens[pos] -= 1
                return False, False
            self.over_limit[uid] += 1
            log = cfg.log_freq != -1 and self._last_logged[pos] + cfg.log_freq <= now
            if log:
                self._last_logged[pos] = now
            return True, log

    def exceeded(self, uid: int, msg_type: int) -> bool:
        return self.check(uid, msg_type)[0]

    def top_over_limit(self, n: int = 10) -> List[Tuple[int, int]]:
        """The ``n`` uids refused most often: (uid, count)."""
        with self._lock:
            return self.over_limit.most_common(n)


__all__ = ["SLURMCTLD_COMMUNICATIONS_BACKOFF", "RateLimitConfig", "RateLimiter"]
