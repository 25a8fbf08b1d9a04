"""The verification-rate benchmark (``benchmarks/verify_rate.py`` and
``slurmauth-fast bench``): tokens verified per second on a generated key,
slurmauth_fast (``HS256Key.verify``, and the full auth/slurm ``Verifier`` with
every claim rule) beside PyJWT (when installed) on the same Slurm-shaped HS256
token in the same run. The ratio is what matters, not the absolute numbers.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Callable, List, Optional

from .jws import HS256Key

CLAIMS = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
          "cluster": "cluster1", "uid": 1000, "gid": 1000, "host": "login01",
          "payload": "AjWm1ZyoVu3WwVSR3lZd1bDx9y0cWS1e1yE0bFRhTjCk"}

#: progress(label, verified so far, seconds elapsed) is called about once a second.
Progress = Callable[[str, int, float], None]


@dataclass(frozen=True)
class Rate:
    label: str
    per_second: float
    count: int
    seconds: float


def rate(fn: Callable[[], object], seconds: float, *, label: str = "",
         progress: Optional[Progress] = None, batch: int = 1000) -> Rate:
    """Call ``fn`` in batches until ``seconds`` have passed; the mean rate."""
    n = 0
    start = last = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        now = time.perf_counter()
        if progress is not None and now - last >= 1.0:
            progress(label, n, now - start)
            last = now
        if now - start >= seconds:
            return Rate(label, n / (now - start), n, now - start)


def run(seconds: float = 2.0, *, compare: bool = True, progress: Optional[Progress] = None) -> List[Rate]:
    """Verify one token with slurmauth_fast and (if ``compare`` and PyJWT is
    importable) with PyJWT, ``seconds`` each. Checks first that both decode
    the token to the same claims, so the two do the same work."""
    from .keys import Keyring
    from .tokens import Verifier

    secret = os.urandom(32)
    key = HS256Key(secret)
    token = key.sign(CLAIMS)
    # The same token through the full auth/slurm verifier (every claim rule, one C call).
    verifier = Verifier(Keyring.from_key_bytes(secret), verifier_uid=0)
    now = CLAIMS["iat"] + 1
    verifier.verify(token, now=now)
    results = [rate(lambda: key.verify(token), seconds, label="slurmauth_fast HS256Key", progress=progress),
               rate(lambda: verifier.verify(token, now=now), seconds, label="slurmauth_fast Verifier",
                    progress=progress)]
    if compare:
        try:
            import jwt as pyjwt
        except ImportError:
            return results
        opts = {"verify_exp": False, "verify_iat": False}
        if key.verify(token).claims != pyjwt.decode(token, secret, algorithms=["HS256"], options=opts):
            raise AssertionError("PyJWT and slurmauth_fast disagree on the benchmark token")
        results.append(rate(lambda: pyjwt.decode(token, secret, algorithms=["HS256"], options=opts),
                            seconds, label="PyJWT", progress=progress))
    return results


def report(results: List[Rate], token_len: Optional[int] = None) -> str:
    base = results[-1].per_second if len(results) > 1 else results[0].per_second
    lines = []
    if token_len is not None:
        lines.append(f"token: {token_len} bytes, HS256, generated key")
    lines.append(f"{'verifier':<24}{'tokens/s':>14}{'ratio':>9}")
    for r in results:
        lines.append(f"{r.label:<24}{r.per_second:>14,.0f}{r.per_second / base:>8.1f}x")
    return "\n".join(lines)


def token_length() -> int:
    return len(HS256Key(b"k" * 32).sign(CLAIMS))
