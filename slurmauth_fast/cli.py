"""The ``slurmauth-fast`` command line.

Each subcommand lives beside the code it drives: a module listed in
:data:`COMMANDS` defines ``register(subparsers)``, which adds its parser and
sets ``func`` to a callable taking the parsed arguments and returning the exit
code.

Exit codes (the same for every subcommand):

- 0: success (the token verified, the file was written, ...).
- 1: the operation failed: a token was rejected (``verify`` prints the
  exception class, Slurm error number and reason), ``decode`` could not decode
  it, or a credential could not be made.
- 2: usage error: unknown option, missing argument, an invalid value (a key
  size below 16 bytes, an unknown kid for ``jwks retire``, retiring the default
  key, ...).
- 3: a key or configuration file is unusable or cannot be written: missing,
  unreadable, too open (Slurm refuses mode & 0007), malformed, breaks a
  slurm.jwks rule, or exists and ``--force`` was not given.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import List, Optional

from .errors import BadArgumentError, KeyFileError, SlurmAuthError

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
    "slurmauth_fast.cli_keys",       # keygen, jwks (issue 9)
    "slurmauth_fast.cli_inspect",    # verify, decode (issue 9)
    "slurmauth_fast.cli_bench",      # bench (issue 9)
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="slurmauth-fast",
        description="Create, verify and administer Slurm authentication credentials and keys.",
        epilog="Exit codes: 0 ok, 1 operation failed (e.g. token rejected), 2 usage error, "
               "3 key/config file unusable or not written. 'slurmauth-fast COMMAND --help' for more.",
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
    except BadArgumentError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SlurmAuthError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
