"""Generic HS256 JWTs: slurmauth_fast.decode and HS256Key.verify beside PyJWT's
jwt.decode, joserfc and a minimal pure-Python verifier, on the same tokens.

Two ways to run it:

    python benchmarks/bench_jws.py          # one run, every row, ratios and the target
    python -m pytest benchmarks/bench_jws.py --benchmark-only

The script times the rows in interleaved rounds (each round times every row
once, so load drifting during the run hits all of them alike) and reports the
best and the median round per row; the ratios use the best rounds (the least
disturbed by other processes on a shared machine), the median ones are shown
beside them. Times are this thread's CPU time (time.thread_time), so another
process taking the core mid-round does not count as ours. Every "decode" row does the same work: signature, alg,
the exp/nbf/iat times, iss and aud; HS256Key.verify and the minimal verifier
stop at signature + JSON (+ alg, + exp for the minimal one). decode parses a
token's claims JSON once and hands out copies when the same token comes again
(still checking its signature and claims each time); the "every token new"
row cycles through more distinct tokens than it keeps.
"""
import itertools
import os
import statistics
import sys
import time
import timeit
from typing import Any, Callable, Dict, List, Tuple

import jwt as pyjwt
import pytest

from slurmauth_fast import HS256Key, decode
from slurmauth_fast.jwt_decode import CLAIMS_CACHE_SIZE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from verify_rate import minimal_hs256_verifier  # noqa: E402  (the same minimal verifier)

KEY = os.urandom(32)
NOW = int(time.time())
AUDIENCE, ISSUER = "api", "https://issuer.example"
#: An access token as identity providers issue them: registered claims and a few more.
CLAIMS: Dict[str, Any] = {
    "iss": ISSUER, "sub": "alice", "aud": AUDIENCE, "iat": NOW, "nbf": NOW, "exp": NOW + 3600,
    "jti": "4f1c2a9e-6f0b-4d2c-9a51-3c7e8b2d1f00", "uid": 1000, "gid": 1000, "host": "login01",
    "scope": "read write", "groups": ["users", "hpc"],
}
TARGET_RATIO = 15.0   # issue #19: generic decode >= 15x PyJWT's jwt.decode


def _joserfc_decoder() -> Callable[[str], Dict[str, Any]]:
    from joserfc import jwt as jose_jwt
    from joserfc.jwk import OctKey

    key = OctKey.import_key(KEY)
    registry = jose_jwt.JWTClaimsRegistry(iss={"essential": True, "value": ISSUER},
                                          aud={"essential": True, "value": AUDIENCE})

    def jose_decode(tok: str) -> Dict[str, Any]:
        token = jose_jwt.decode(tok, key, algorithms=["HS256"])
        registry.validate(token.claims)    # exp, nbf, iat, iss, aud
        return token.claims
    return jose_decode


def rows(token: str) -> List[Tuple[str, Callable[[], Any]]]:
    """(name, zero-argument call) per row, each checked to return CLAIMS."""
    key = HS256Key(KEY)
    jose_decode, minimal = _joserfc_decoder(), minimal_hs256_verifier(KEY)
    token_bytes = token.encode()
    out = [
        ("slurmauth_fast.decode (bytes key)",
         lambda: decode(token, KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)),
        ("slurmauth_fast.decode (HS256Key)",
         lambda: decode(token, key, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)),
        ("PyJWT jwt.decode",
         lambda: pyjwt.decode(token, KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)),
        ("joserfc jwt.decode + claims registry", lambda: jose_decode(token)),
        ("HS256Key.verify (signature + JSON only)", lambda: key.verify(token).claims),
        ("minimal Python hmac+json (signature, alg, exp)", lambda: minimal(token_bytes)),
    ]
    for name, call in out:
        assert call() == CLAIMS, name
    # every token new: many more distinct tokens (another jti each) than decode keeps or notes
    fresh_claims = [{**CLAIMS, "jti": f"{i:036d}"} for i in range(16 * CLAIMS_CACHE_SIZE)]
    fresh = itertools.cycle([key.sign(c) for c in fresh_claims])
    assert [decode(next(fresh), KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER)
            for _ in fresh_claims] == fresh_claims
    out.insert(1, ("slurmauth_fast.decode (bytes key), every token new",
                   lambda: decode(next(fresh), KEY, algorithms=["HS256"], audience=AUDIENCE,
                                  issuer=ISSUER)))
    return out


def measure(token: str, rounds: int = 30, target_s: float = 0.02) -> Dict[str, Tuple[float, float]]:
    """(best, median) microseconds per call of each row over interleaved rounds."""
    calls = rows(token)
    numbers = {}
    timers = {name: timeit.Timer(call, timer=time.thread_time) for name, call in calls}
    for name, timer in timers.items():       # calls per round: about target_s of work
        t = timer.timeit(number=200)
        numbers[name] = max(50, int(200 * target_s / max(t, 1e-9)))
    samples: Dict[str, List[float]] = {name: [] for name, _ in calls}
    for _ in range(rounds):
        for name, timer in timers.items():
            n = numbers[name]
            samples[name].append(timer.timeit(number=n) / n * 1e6)
    return {name: (min(v), statistics.median(v)) for name, v in samples.items()}


def main() -> int:
    token = HS256Key(KEY).sign(CLAIMS)
    results = measure(token)
    best_base, median_base = results["PyJWT jwt.decode"]
    print(f"token: {len(token)} bytes, {len(CLAIMS)} claims; CPU us per token, best and median of 30 interleaved rounds")
    print(f"{'row':48s} {'us best':>8s} {'tokens/s':>10s} {'vs PyJWT':>9s} {'us median':>10s} {'vs PyJWT':>9s}")
    for name, (best, median) in results.items():
        print(f"{name:48s} {best:8.2f} {1e6 / best:10,.0f} {best_base / best:8.1f}x "
              f"{median:10.2f} {median_base / median:8.1f}x")
    for row in ("slurmauth_fast.decode (bytes key)", "slurmauth_fast.decode (bytes key), every token new"):
        best, median = results[row]
        ratio = best_base / best
        verdict = "met" if ratio >= TARGET_RATIO else "NOT met"
        print(f"target: generic decode >= {TARGET_RATIO:.0f}x PyJWT jwt.decode, {row[15:]} -> measured "
              f"{ratio:.1f}x (best rounds; {median_base / median:.1f}x on medians) ({verdict})")
    return 0


# --- pytest-benchmark rows ------------------------------------------------------

@pytest.fixture(scope="module")
def key():
    return HS256Key(KEY)


@pytest.fixture(scope="module")
def token(key):
    return key.sign(CLAIMS)


def test_decode_slurmauth_fast(benchmark, token):
    assert benchmark(decode, token, KEY, algorithms=["HS256"], audience=AUDIENCE, issuer=ISSUER) == CLAIMS


def test_decode_pyjwt(benchmark, token):
    assert benchmark(pyjwt.decode, token, KEY, algorithms=["HS256"], audience=AUDIENCE,
                     issuer=ISSUER) == CLAIMS


def test_decode_joserfc(benchmark, token):
    assert benchmark(_joserfc_decoder(), token) == CLAIMS


def test_verify_slurmauth_fast(benchmark, key, token):
    assert benchmark(key.verify, token).claims == CLAIMS


def test_verify_raw_slurmauth_fast(benchmark, key, token):
    benchmark(key.verify_raw, token)


def test_sign_slurmauth_fast(benchmark, key):
    benchmark(key.sign, CLAIMS)


def test_sign_pyjwt(benchmark):
    benchmark(pyjwt.encode, CLAIMS, KEY, algorithm="HS256")


if __name__ == "__main__":
    sys.exit(main())
