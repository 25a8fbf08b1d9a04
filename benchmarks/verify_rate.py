#!/usr/bin/env python3
"""The main job: verification rate on a generated key, slurmauth_fast beside PyJWT.

Both verify the same Slurm-shaped HS256 token (claims as auth/slurm writes them)
in the same run; the ratio is what matters, not the absolute numbers. The logic
lives in slurmauth_fast.bench (also behind ``slurmauth-fast bench``).
"""
from __future__ import annotations

import argparse

from slurmauth_fast import bench


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0, help="time per contender")
    args = ap.parse_args()
    print(bench.report(bench.run(args.seconds), bench.token_length()))


if __name__ == "__main__":
    main()
