"""The ``slurmauth-fast`` command line.

One module per command group (:data:`COMMANDS` maps each subcommand to its
module and one-line help): ``keys`` (keygen, jwks, keys-check), ``inspect``
(verify, cred-verify, decode), ``slurm`` (cred-create), ``jwt`` (token,
jwt-verify), ``shim``, ``proxy``, ``sackd`` and ``bench``. A module defines
``register(subparsers)``, which adds its parsers and sets ``func`` to a
callable taking the parsed arguments and returning the exit code. Only the
module of the command being run is imported: ``slurmauth-fast --help`` lists
the commands from the table and loads no server code.

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
from typing import Dict, List, Optional, Tuple

from ..exceptions import BadArgumentError, KeyFileError, SlurmAuthError
from ..slurmconf import SlurmConfError
from ._common import (EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_USAGE, add_keyring_args,
                      load_keyring, slurm_user_arg)

#: subcommand -> (module under slurmauth_fast.cli, one-line help)
COMMANDS: Dict[str, Tuple[str, str]] = {
    "keygen": ("keys", "create a new slurm.key (1024 random bytes, mode 0600)"),
    "jwks": ("keys", "create, rotate and inspect slurm.jwks key sets"),
    "keys-check": ("keys", "load slurm.jwks/slurm.key like slurmctld and list keys (JSON)"),
    "verify": ("inspect", "verify an auth/slurm credential and explain any rejection"),
    "cred-verify": ("inspect", "verify an auth/slurm credential, claims as one JSON line "
                               "(= verify --format claims-json)"),
    "decode": ("inspect", "show a token's header and claims WITHOUT verifying (UNVERIFIED)"),
    "cred-create": ("slurm", "create an auth/slurm credential"),
    "token": ("jwt", "mint an auth/jwt token like 'scontrol token'"),
    "jwt-verify": ("jwt", "verify an auth/jwt token like slurmctld"),
    "shim": ("shim", "run a controller shim that verifies Slurm RPCs and answers REQUEST_PING"),
    "proxy": ("proxy", "run an authenticating, rate-limiting front for slurmctld"),
    "sackd": ("sackd", "run a SACK auth kiosk (compatible with Slurm's sackd)"),
    "bench": ("bench", "measure the verification rate against PyJWT, joserfc, libjwt, munged and "
                       "the OpenSSL HMAC floor (needs a source checkout)"),
}


def _chosen(argv: List[str]) -> Optional[str]:
    """The subcommand named in argv (the first argument that is one), if any."""
    for arg in argv:
        if arg in COMMANDS:
            return arg
        if not arg.startswith("-"):
            return None
    return None


def build_parser(argv: Optional[List[str]] = None) -> argparse.ArgumentParser:
    """The parser; the module of the command in ``argv`` adds its full
    parsers (with no command, every module does when ``argv`` is None)."""
    parser = argparse.ArgumentParser(
        prog="slurmauth-fast",
        description="Create, verify and administer Slurm authentication credentials and keys.",
        epilog="Exit codes: 0 ok, 1 operation failed (e.g. token rejected), 2 usage error, "
               "3 key/config file unusable or not written. 'slurmauth-fast COMMAND --help' for more.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = _chosen(argv) if argv is not None else None
    modules = ({COMMANDS[chosen][0]} if chosen else set()) if argv is not None else \
        {m for m, _ in COMMANDS.values()}
    loaded: List[str] = []
    for name, (module, help_text) in COMMANDS.items():
        if module in modules and module not in loaded:
            importlib.import_module(f"{__name__}.{module}").register(sub)
            loaded.append(module)
        elif module not in modules:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    parser = build_parser(argv)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(args.func(args))
    except (KeyFileError, SlurmConfError) as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_CONFIG
    except BadArgumentError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_USAGE
    except SlurmAuthError as e:
        print(f"slurmauth-fast: {e}", file=sys.stderr)
        return EXIT_FAILED


__all__ = ["COMMANDS", "EXIT_CONFIG", "EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_keyring_args",
           "build_parser", "load_keyring", "main", "slurm_user_arg"]
