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
import pwd
import sys
from typing import TYPE_CHECKING, List, Optional

from .errors import BadArgumentError, KeyFileError, SlurmAuthError

if TYPE_CHECKING:  # pragma: no cover
    from .keys import Keyring

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


def slurm_user_arg(value: str) -> int:
    """argparse type for SlurmUser given as a name or a uid."""
    if value.isdigit():
        return int(value)
    try:
        return pwd.getpwnam(value).pw_uid
    except KeyError:
        raise argparse.ArgumentTypeError(f"unknown SlurmUser {value!r}") from None


def add_keyring_args(p: argparse.ArgumentParser) -> None:
    """The options every auth/slurm subcommand uses to find slurm.key / slurm.jwks."""
    p.add_argument("--conf-dir", metavar="DIR",
                   help="directory of slurm.conf and the keys (default: dirname of $SLURM_CONF, else /etc/slurm)")
    p.add_argument("--key", metavar="PATH", help="slurm.key path (overrides $SLURM_SACK_KEY)")
    p.add_argument("--jwks", metavar="PATH", help="slurm.jwks path (overrides $SLURM_SACK_JWKS); "
                                                  "used instead of slurm.key when it exists")
    p.add_argument("--slurm-user", type=slurm_user_arg, metavar="NAME|UID",
                   help="SlurmUser, for the key-owner warning")


def load_keyring(args: argparse.Namespace) -> "Keyring":
    """Load the keys named by :func:`add_keyring_args`'s options, Slurm's way."""
    from .keys import Keyring

    return Keyring.load(key_path=args.key, jwks_path=args.jwks, conf_dir=args.conf_dir,
                        slurm_user_uid=args.slurm_user)


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
