"""Slurm's rl_* rate limit, against a fake clock: the same decisions as
slurmctld/rate_limit.c (the real_slurm suite checks them against a real slurmctld)."""
import pytest

from slurmauth_fast.ratelimit import RateLimitConfig, RateLimiter
from slurmauth_fast.slurmconf import SlurmConfError

PING = 1008


class Clock:
    def __init__(self, t=1_000_000):
        self.t = t

    def __call__(self):
        return self.t


def limiter(clock, **cfg):
    return RateLimiter(RateLimitConfig(enabled=True, **cfg), clock=clock, slurm_user_uid=500)


def test_bucket_then_refill_per_period():
    clock = Clock()
    rl = limiter(clock, bucket_size=3, refill_rate=2, refill_period=10)
    # the first request creates the bucket (3 - 1 left), two more, then over
    assert [rl.exceeded(1000, PING) for _ in range(4)] == [False, False, False, True]
    clock.t += 9                              # still inside the same 10 s period
    assert rl.exceeded(1000, PING)
    clock.t += 1                              # next period: +2 tokens
    assert [rl.exceeded(1000, PING) for _ in range(3)] == [False, False, True]
    clock.t += 1000                           # many periods: capped at the bucket size
    assert [rl.exceeded(1000, PING) for _ in range(4)] == [False, False, False, True]


def test_periods_follow_the_wall_clock_not_the_first_request():
    clock = Clock(1_000_009)                  # one second before a 10 s boundary
    rl = limiter(clock, bucket_size=1, refill_rate=1, refill_period=10)
    assert not rl.exceeded(7, PING)
    assert rl.exceeded(7, PING)
    clock.t += 1                              # the boundary: a token, though 1 s passed
    assert not rl.exceeded(7, PING)


def test_root_slurmuser_and_exempt_types_are_never_limited():
    clock = Clock()
    rl = RateLimiter(RateLimitConfig(enabled=True, bucket_size=1), clock=clock,
                     slurm_user_uid=500, exempt_msg_types=[2009])
    for uid, msg in ((0, PING), (500, PING), (1000, 2009)):
        assert not any(rl.exceeded(uid, msg) for _ in range(10))
    assert not rl.exceeded(1000, PING) and rl.exceeded(1000, PING)


def test_disabled_limits_nothing():
    rl = RateLimiter(RateLimitConfig(), clock=Clock())
    assert not any(rl.exceeded(1000, PING) for _ in range(100))


def test_users_have_their_own_buckets_and_a_full_table_lets_new_uids_through():
    clock = Clock()
    rl = limiter(clock, bucket_size=1, table_size=2)
    assert not rl.exceeded(1, PING) and not rl.exceeded(3, PING)    # both hash to slot 1, probe
    assert rl.exceeded(1, PING) and rl.exceeded(3, PING)
    assert not any(rl.exceeded(5, PING) for _ in range(5))          # no slot: never limited
    assert rl.table_full == 5
    assert rl.top_over_limit() == [(1, 1), (3, 1)]


def test_clock_stepping_back_wraps_like_uint32():
    clock = Clock(1000)
    rl = limiter(clock, bucket_size=5, refill_rate=2, refill_period=1)
    for _ in range(5):
        rl.exceeded(9, PING)                  # 0 tokens left
    clock.t -= 1                              # delta = -1: 0 - 2 wraps, then capped at 5
    assert [rl.exceeded(9, PING) for _ in range(6)] == [False] * 5 + [True]


def test_log_frequency():
    clock = Clock()
    rl = limiter(clock, bucket_size=1, refill_period=3600, log_freq=10)
    rl.check(42, PING)
    assert rl.check(42, PING) == (True, True)
    assert rl.check(42, PING) == (True, False)
    clock.t += 10
    assert rl.check(42, PING) == (True, True)
    never = limiter(clock, bucket_size=1, log_freq=-1)
    never.check(42, PING)
    assert never.check(42, PING) == (True, False)


@pytest.mark.parametrize("params,expected", [
    ("", RateLimitConfig()),
    ("rl_bucket_size=5", RateLimitConfig()),                       # no rl_enable: off
    ("RL_ENABLE", RateLimitConfig(enabled=True)),                  # any case
    ("rl_enable,rl_bucket_size=5,rl_refill_rate=3,rl_refill_period=7,rl_table_size=16,rl_log_freq=-1",
     RateLimitConfig(True, 16, 5, 3, 7, -1)),
    ("enable_configless,rl_enable,rl_bucket_size=", RateLimitConfig(enabled=True)),  # empty: default
])
def test_slurmctld_parameters(params, expected):
    assert RateLimitConfig.from_slurmctld_parameters(params) == expected


@pytest.mark.parametrize("params", ["rl_enable,rl_bucket_size=0", "rl_enable,rl_refill_rate=-1",
                                    "rl_enable,rl_table_size=x", "rl_enable,rl_log_freq=-2",
                                    "rl_enable,rl_refill_period=4294967296"])
def test_invalid_parameters_are_refused_as_slurmctld_refuses_them(params):
    with pytest.raises(SlurmConfError, match="invalid"):
        RateLimitConfig.from_slurmctld_parameters(params)


def test_exempt_types_beyond_what_the_table_holds_are_refused():
    from slurmauth_fast.exceptions import BadArgumentError
    with pytest.raises(BadArgumentError, match="at most 64"):
        RateLimiter(RateLimitConfig(enabled=True), exempt_msg_types=range(2000, 2065))
    with pytest.raises(BadArgumentError, match="16-bit"):
        RateLimiter(RateLimitConfig(enabled=True), exempt_msg_types=[70000])
    rl = RateLimiter(RateLimitConfig(enabled=True, bucket_size=1), clock=Clock(),
                     exempt_msg_types=range(2000, 2064))      # 64: the most it holds
    assert not any(rl.exceeded(7, 2063) for _ in range(5)) and rl.exceeded(7, PING) is False
    assert rl.exceeded(7, PING)


def test_top_over_limit_orders_by_count_then_uid():
    clock = Clock()
    rl = limiter(clock, bucket_size=1, refill_period=3600, table_size=8)
    # slots uid % 8: 17 in slot 1 before 12 in slot 4, yet 12 comes first on a tie
    for uid, extra in ((30, 1), (17, 3), (12, 3), (40, 2)):
        for _ in range(1 + extra):
            rl.exceeded(uid, PING)
    assert rl.top_over_limit() == [(12, 3), (17, 3), (40, 2), (30, 1)]
    assert rl.top_over_limit(2) == [(12, 3), (17, 3)]
    assert rl.over_limit == {12: 3, 17: 3, 40: 2, 30: 1}
