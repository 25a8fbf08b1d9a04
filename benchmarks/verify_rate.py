#!/usr/bin/env python3
"""The main job: verification rate on a generated key, slurmauth_fast beside PyJWT.

Both verify the same Slurm-shaped HS256 token (claims as auth/slurm writes them)
in the same run; the ratio is what matters, not the absolute numbers.
"""
from __future__ import annotations

import argparse
import os
import time
from typing import Callable

import jwt as pyjwt

from slurmauth_fast import HS256Key

CLAIMS = {"iat": 1764000000, "exp": 1764000060, "ver": 0x2D00, "ruid": 4294967295, "context": "auth",
          "cluster": "cluster1", "uid": 1000, "gid": 1000, "host": "login01",
          "payload": "AjWm1ZyoVu3WwVSR3lZd1bDx9y0cWS1e1yE0bFRhTjCk"}


def rate(fn: Callable[[], object], seconds: float) -> float:
    n, batch = 0, 1000
    start = time.perf_counter()
    while True:
        for _ in range(batch):
            fn()
        n += batch
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0, help="time per contender")
    args = ap.parse_args()
    secret = os.urandom(32)
    key = HS256Key(secret)
    token = key.sign(CLAIMS)
    opts = {"verify_exp": False, "verify_iat": False}
    assert key.verify(token).claims == pyjwt.decode(token, secret, algorithms=["HS256"], options=opts)
    ours = rate(lambda: key.verify(token), args.seconds)
    theirs = rate(lambda: pyjwt.decode(token, secret, algorithms=["HS256"], options=opts), args.seconds)
    print(f"token: {len(token)} bytes, HS256, generated key")
    print(f"{'verifier':<24}{'tokens/s':>14}{'ratio':>9}")
    print(f"{'slurmauth_fast':<24}{ours:>14,.0f}{ours / theirs:>8.1f}x")
    print(f"{'PyJWT':<24}{theirs:>14,.0f}{1.0:>8.1f}x")


if __name__ == "__main__":
    main()
