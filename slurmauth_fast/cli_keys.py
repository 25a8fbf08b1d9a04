"""``slurmauth-fast keygen`` and ``slurmauth-fast jwks ...``: create slurm.key,
create and rotate slurm.jwks (see :mod:`slurmauth_fast.keyadmin` for the
workflow). Files are written atomically with mode 0600; an existing file is
never replaced without ``--force`` (keygen, jwks new)."""
from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any, Optional, Tuple

from . import keyadmin
from .cli import EXIT_OK
from .cli_inspect import utc
from .keys import MIN_JWKS_KEY_BYTES, short_key_warning

_ROTATION = """\
Safe key rotation (Slurm >= 24.05 reads slurm.jwks instead of slurm.key when it exists):
  1. slurmauth-fast jwks rotate --old-exp 3600   new default key; the old one verifies for 1 h more
  2. copy slurm.jwks to every slurmctld/slurmdbd/slurmd/sackd host; scontrol reconfigure
  3. when nothing signed by the old key can still be in flight:
     slurmauth-fast jwks retire OLD_KID; copy the file out again; scontrol reconfigure
'jwks list' shows kids, the default and expiry (never the secrets)."""


def _owner(spec: Optional[str]) -> Optional[Tuple[int, int]]:
    return keyadmin.parse_owner(spec) if spec else None


def _when(t: Optional[int]) -> str:
    return "never" if t is None else utc(t)


# --- keygen -------------------------------------------------------------------

def _keygen(args: argparse.Namespace) -> int:
    n = keyadmin.write_slurm_key(args.path, nbytes=args.bytes, overwrite=args.force, owner=_owner(args.owner))
    print(f"wrote {n} random bytes to {args.path} (mode 0600"
          f"{', owner ' + args.owner if args.owner else ''})")
    if not args.owner and os.geteuid() == 0:
        print("note: the file is owned by root; Slurm wants root or SlurmUser "
              "(e.g. --owner slurm:slurm)", file=sys.stderr)
    return EXIT_OK


# --- jwks ---------------------------------------------------------------------

def _save(args: argparse.Namespace, doc: Any, *, overwrite: bool = True) -> None:
    keyadmin.save_jwks(args.file, doc, overwrite=overwrite, owner=_owner(args.owner))


def _jwks_new(args: argparse.Namespace) -> int:
    kid = args.kid or keyadmin.default_kid()
    _save(args, keyadmin.new_jwks(kid, nbytes=args.bytes, exp=args.exp), overwrite=args.force)
    print(f"wrote {args.file} with one key, kid {kid} (default)")
    return EXIT_OK


def _jwks_add(args: argparse.Namespace) -> int:
    kid = args.kid or keyadmin.default_kid()
    doc = keyadmin.add_key(keyadmin.load_jwks(args.file), kid, nbytes=args.bytes, exp=args.exp,
                           make_default=args.default)
    _save(args, doc)
    print(f"added kid {kid}{' as the new default' if args.default else ''} to {args.file}")
    return EXIT_OK


def _jwks_rotate(args: argparse.Namespace) -> int:
    kid = args.kid or keyadmin.default_kid()
    old_exp = int(time.time()) + args.old_exp if args.old_exp is not None else None
    doc, old = keyadmin.rotate(keyadmin.load_jwks(args.file), kid, nbytes=args.bytes, old_exp=old_exp)
    _save(args, doc)
    print(f"rotated {args.file}: new default kid {kid}; old default {old} kept for verification"
          f"{' until ' + _when(old_exp) if old_exp is not None else ''}")
    print("next: distribute the file to every Slurm host, then 'scontrol reconfigure'; "
          f"later 'slurmauth-fast jwks retire {old}'")
    return EXIT_OK


def _jwks_retire(args: argparse.Namespace) -> int:
    _save(args, keyadmin.retire(keyadmin.load_jwks(args.file), args.retire_kid))
    print(f"removed kid {args.retire_kid} from {args.file}")
    return EXIT_OK


def _jwks_list(args: argparse.Namespace) -> int:
    keys = keyadmin.list_keys(keyadmin.load_jwks(args.file))
    width = max([3] + [len(k.kid) for k in keys])
    print(f"{'KID':<{width}}  DEFAULT  {'BYTES':>5}  EXPIRES")
    for k in keys:
        exp = _when(k.exp) + (" (EXPIRED)" if k.expired else "")
        short = " (SHORT)" if k.size < MIN_JWKS_KEY_BYTES else ""
        print(f"{k.kid:<{width}}  {'yes' if k.default else 'no':<7}  {k.size:>5}  {exp}{short}")
    for k in keys:
        if k.size < MIN_JWKS_KEY_BYTES:
            print(f"warning: '{args.file}': kid {k.kid!r} holds {k.size} bytes, under "
                  f"{MIN_JWKS_KEY_BYTES}: Slurm refuses this key set at load", file=sys.stderr)
    # slurm.key beside it is what Slurm reads when this file is absent: say so when it is short
    key_path = os.path.join(os.path.dirname(os.path.abspath(args.file)), "slurm.key")
    try:
        size = os.stat(key_path).st_size
    except OSError:
        size = None
    msg = short_key_warning(key_path, size) if size else None
    if msg is not None:
        print(f"warning: {msg} (Slurm falls back to it when {args.file} is absent)", file=sys.stderr)
    return EXIT_OK


def _add_common(p: argparse.ArgumentParser, *, new_key: bool = True) -> None:
    p.add_argument("--file", "-f", default=keyadmin.default_jwks_path(), metavar="PATH",
                   help="the slurm.jwks (default: $SLURM_SACK_JWKS, else slurm.jwks beside "
                        "$SLURM_CONF, else /etc/slurm/slurm.jwks; now %(default)s)")
    p.add_argument("--owner", metavar="USER[:GROUP]",
                   help="owner of the written file, normally SlurmUser (needs root)")
    if new_key:
        p.add_argument("--kid", help="key id for the new key (default: UTC time + random suffix)")
        p.add_argument("--bytes", type=int, default=keyadmin.DEFAULT_KEY_BYTES, metavar="N",
                       help="random bytes in the new key (default %(default)s; Slurm needs >= 16)")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "keygen", help="create a new slurm.key (1024 random bytes, mode 0600)",
        description="Create a slurm.key for auth/slurm: random bytes from the OS CSPRNG, like "
                    "'dd if=/dev/random of=/etc/slurm/slurm.key bs=1024 count=1' in Slurm's "
                    "documentation, written atomically with mode 0600. Copy it to every host "
                    "running slurmctld, slurmdbd, slurmd or sackd.",
        epilog="Example: slurmauth-fast keygen /etc/slurm/slurm.key --owner slurm:slurm")
    p.add_argument("path", nargs="?", default=keyadmin.default_key_path(),
                   help="where to write the key (default: $SLURM_SACK_KEY, else slurm.key beside "
                        "$SLURM_CONF, else /etc/slurm/slurm.key; now %(default)s)")
    p.add_argument("--bytes", type=int, default=keyadmin.DEFAULT_KEY_BYTES, metavar="N",
                   help="key size in bytes (default %(default)s)")
    p.add_argument("--owner", metavar="USER[:GROUP]", help="chown the file, normally to SlurmUser (needs root)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=_keygen)

    j = subparsers.add_parser(
        "jwks", help="create, rotate and inspect slurm.jwks key sets",
        description="Manage a slurm.jwks key set. Every change is checked against Slurm's own "
                    "load rules before the file is replaced (atomically, mode 0600).",
        epilog=_ROTATION, formatter_class=argparse.RawDescriptionHelpFormatter)
    js = j.add_subparsers(dest="jwks_command", metavar="ACTION")
    js.required = True

    p = js.add_parser("new", help="create a key set with one default key")
    _add_common(p)
    p.add_argument("--exp", type=int, metavar="UNIXTIME", help="expiry of the key (default: none)")
    p.add_argument("--force", action="store_true", help="replace an existing file")
    p.set_defaults(func=_jwks_new)

    p = js.add_parser("add", help="add a verification key (not the default unless --default)")
    _add_common(p)
    p.add_argument("--exp", type=int, metavar="UNIXTIME", help="expiry of the key (default: none)")
    p.add_argument("--default", action="store_true", help="make the new key the signing key")
    p.set_defaults(func=_jwks_add)

    p = js.add_parser("rotate", help="add a new key and make it the default; keep the old one",
                      description="Add a new key as the default (signing) key. The previous default "
                                  "stays in the set so credentials it signed still verify.")
    _add_common(p)
    p.add_argument("--old-exp", type=int, metavar="SECONDS",
                   help="give the old default an exp this many seconds from now (a grace deadline)")
    p.set_defaults(func=_jwks_rotate)

    p = js.add_parser("retire", help="remove a key (never the default)")
    _add_common(p, new_key=False)
    p.add_argument("retire_kid", metavar="KID", help="the kid to remove")
    p.set_defaults(func=_jwks_retire)

    p = js.add_parser("list", help="show kid, default and expiry of each key (no secrets)")
    _add_common(p, new_key=False)
    p.set_defaults(func=_jwks_list)
