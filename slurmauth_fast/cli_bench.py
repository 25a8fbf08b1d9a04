"""``slurmauth-fast bench``: the verification-rate comparison of
:mod:`slurmauth_fast.verify_rate`, the same code and options as
``benchmarks/verify_rate.py`` (every peer, the OpenSSL floor, threads, the
socket run; ``--no-compare`` for slurmauth_fast's own rows only)."""
from __future__ import annotations

from typing import Any

from . import verify_rate


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "bench", help="measure the verification rate against PyJWT, joserfc, libjwt, munged and "
                      "the OpenSSL HMAC floor (ratios from one run)",
        description=verify_rate.__doc__.split("\n\n")[0] if verify_rate.__doc__ else None)
    verify_rate.add_arguments(p, write_files=False)
    p.set_defaults(func=verify_rate.run_from_args)
