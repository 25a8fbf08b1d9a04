"""``slurmauth-fast bench``: the verification-rate benchmark
(:mod:`slurmauth_fast.bench`, the same as ``benchmarks/verify_rate.py``)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from . import bench
from .cli import EXIT_OK


def _progress(label: str, n: int, elapsed: float) -> None:
    print(f"  {label}: {n:,} verified in {elapsed:.0f} s ({n / elapsed:,.0f}/s)", file=sys.stderr, flush=True)


def _bench(args: argparse.Namespace) -> int:
    show = args.progress if args.progress is not None else args.seconds >= 5
    print(f"verifying one Slurm-shaped HS256 token for {args.seconds:g} s per verifier ...",
          file=sys.stderr, flush=True)
    results = bench.run(args.seconds, compare=not args.no_compare, progress=_progress if show else None)
    print(bench.report(results, bench.token_length()))
    return EXIT_OK


def _positive(text: str) -> float:
    v = float(text)
    if not v > 0:
        raise argparse.ArgumentTypeError("must be a positive number of seconds")
    return v


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="measure the verification rate (tokens/s), beside PyJWT when installed",
        description="Verify one Slurm-shaped HS256 token in a loop for --seconds per verifier "
                    "and print tokens per second; PyJWT runs the same token in the same process "
                    "for a ratio (the ratio is what carries across machines).")
    p.add_argument("--seconds", type=_positive, default=2.0, help="time per verifier (default %(default)s)")
    p.add_argument("--no-compare", action="store_true", help="do not run PyJWT")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--progress", dest="progress", action="store_true", default=None,
                   help="print progress every second (default: on for runs of 5 s or more)")
    g.add_argument("--no-progress", dest="progress", action="store_false")
    p.set_defaults(func=_bench)
