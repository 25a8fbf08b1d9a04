"""What every subcommand shares: exit codes and the options that find the keys."""
from __future__ import annotations

import argparse
import pwd
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from ..keys import Keyring

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CONFIG = 3


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
    from ..keys import Keyring

    return Keyring.load(key_path=args.key, jwks_path=args.jwks, conf_dir=args.conf_dir,
                        slurm_user_uid=args.slurm_user)


def utc(t: Any) -> str:
    """A unix time as 'YYYY-mm-dd HH:MM:SS UTC' ('' for a non-integer)."""
    if type(t) is not int:
        return ""
    try:
        return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(t))
    except (OverflowError, OSError, ValueError):
        return "(out of range)"
