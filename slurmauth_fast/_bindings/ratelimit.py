"""Binding of Slurm's rl_* token-bucket table in C (``csrc/ratelimit.h``): no policy here
(:mod:`slurmauth_fast.ratelimit` reads the settings and decides what to do)."""
from __future__ import annotations

from typing import Any, Iterable, List, Tuple

from ..exceptions import BadArgumentError
from ._ffi import ffi, lib

PASS = lib.SA_RL_PASS
EXCEEDED = lib.SA_RL_EXCEEDED
EXCEEDED_LOG = lib.SA_RL_EXCEEDED_LOG
MAX_EXEMPT = lib.SA_RL_MAX_EXEMPT


class RateTable:
    """One ``sa_rl``: the buckets of every uid, thread-safe (a mutex in C)."""

    def __init__(self, *, table_size: int, bucket_size: int, refill_rate: int,
                 refill_period: int, log_freq: int, slurm_user_uid: int,
                 exempt_msg_types: Iterable[int]) -> None:
        exempt = sorted(set(exempt_msg_types))
        if len(exempt) > MAX_EXEMPT:
            raise BadArgumentError(f"at most {MAX_EXEMPT} exempt message types, not {len(exempt)}")
        if any(not 0 <= t <= 0xFFFF for t in exempt):
            raise BadArgumentError("exempt message types are 16-bit numbers")
        cfg = ffi.new("sa_rl_config *", {
            "table_size": table_size, "bucket_size": bucket_size, "refill_rate": refill_rate,
            "refill_period": refill_period, "log_freq": log_freq,
            "slurm_user_uid": slurm_user_uid})
        rl = lib.sa_rl_new(cfg, exempt or ffi.NULL, len(exempt))
        if rl == ffi.NULL:
            raise BadArgumentError("rate limit table: a zero setting, or out of memory")
        self._rl = ffi.gc(rl, lib.sa_rl_free)
        self._size = table_size

    @property
    def cdata(self) -> Any:
        """The ``sa_rl *`` (for the serving core); valid while this object lives."""
        return self._rl

    def check(self, uid: int, msg_type: int, now: int) -> int:
        """PASS, EXCEEDED or EXCEEDED_LOG for one request of ``uid`` at unix time ``now``."""
        return int(lib.sa_rl_check(self._rl, uid, msg_type, now))

    def table_full(self) -> int:
        return int(lib.sa_rl_table_full(self._rl))

    def top(self, n: int) -> List[Tuple[int, int]]:
        """Up to ``n`` (uid, refusals), most refused first, then lower uid."""
        n = max(0, min(n, self._size))
        if n == 0:
            return []
        uids = ffi.new("uint32_t[]", n)
        counts = ffi.new("uint64_t[]", n)
        got = lib.sa_rl_top(self._rl, uids, counts, n)
        return [(int(uids[k]), int(counts[k])) for k in range(got)]


__all__ = ["EXCEEDED", "EXCEEDED_LOG", "MAX_EXEMPT", "PASS", "RateTable"]
