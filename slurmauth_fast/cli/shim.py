"""``slurmauth-fast shim``: run the example controller shim (:mod:`slurmauth_fast.shim`)."""
from __future__ import annotations

import argparse
from typing import Any

from ..shim import DEFAULT_MAX_FRAME, ControllerShim
from ._serving import add_server_args, build_verifier, run, setup_logging


def _run(args: argparse.Namespace) -> int:
    if not args.unix and not args.listen:
        print("slurmauth-fast shim: give --unix PATH and/or --listen HOST:PORT")
        return 2
    setup_logging(args, "shim")
    return run(ControllerShim(build_verifier(args), max_frame=args.max_frame), args, "shim")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "shim", help="run a controller shim that verifies Slurm RPCs and answers REQUEST_PING",
        description="A stand-in for slurmctld's RPC intake on the C serving core: verifies each "
                    "RPC as slurmctld does and answers REQUEST_PING as slurmctld does (unsigned "
                    "RESPONSE_SLURM_RC, one RPC per connection, rc 1007 for a bad credential).")
    add_server_args(p, default_max_frame=DEFAULT_MAX_FRAME)
    p.set_defaults(func=_run)
