"""The ``slurmauth-fast`` command line.

Each subcommand lives beside the code it drives: a module listed in
:data:`COMMANDS` defines ``register(subparsers)``, which adds its parser and
sets ``func`` to a callable taking the parsed arguments and returning the exit
code. Exit codes: 0 success, 1 the operation failed (e.g. a token did not
verify), 2 usage error, 3 a key or configuration file is unusable.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .errors import KeyFileError, SlurmAuthError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3

#: Modules that contribute subcommands (one line each).
COMMANDS: List[str] = [
    "slurmauth_fast.jwt_cli",
    "slurmauth_fast.slurm_cli",
    "slurmauth_fast.shim",
    "slurmauth_fast.sack_cli",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slurmauth-fast",
        description="Create, verify and administer Slurm authentication credentials and keys.",
        epilog="Exit codes: 0 ok, 1 operation failed, 2 usage error, 3 key/config file unusable.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except KeyFileError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except SlurmAuthError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
