"""``slurmauth-fast cred-create``: an auth/slurm credential from the shell.

Keys are found as Slurm finds them (slurm.jwks, else slurm.key, beside
slurm.conf or as given by SLURM_SACK_JWKS / SLURM_SACK_KEY / --key / --jwks),
with Slurm's permission check. (``cred-verify`` is in :mod:`.inspect`,
``keys-check`` in :mod:`.keys`.)
"""
from __future__ import annotations

import argparse
import os
from typing import Any

from ..credential import CONTEXTS, DEFAULT_TTL, create_credential
from ..keys import SLURM_AUTH_UID_ANY
from ._common import EXIT_OK, add_keyring_args, load_keyring


def register(subparsers: Any) -> None:
    c = subparsers.add_parser("cred-create", help="create an auth/slurm credential",
                              description="Create an auth/slurm credential signed with the default key "
                                          "and print it.")
    c.add_argument("--uid", type=int, default=os.getuid(), help="uid claim (default: the caller)")
    c.add_argument("--gid", type=int, default=os.getgid(), help="gid claim (default: the caller)")
    c.add_argument("--ruid", type=int, default=SLURM_AUTH_UID_ANY,
                   help=f"uid allowed to verify (default {SLURM_AUTH_UID_ANY}: anyone)")
    c.add_argument("--context", default="auth", choices=CONTEXTS)
    c.add_argument("--ttl", type=int, default=DEFAULT_TTL, help=f"lifespan (default {DEFAULT_TTL} s)")
    c.add_argument("--cluster", help="ClusterName claim")
    c.add_argument("--host", help="host claim (default: the short hostname)")
    c.add_argument("--payload-hex", metavar="HEX", help="credential data, hex")
    c.add_argument("--client-ids", action="store_true",
                   help="add the 'id' object from the local user database (AuthInfo=use_client_ids)")
    add_keyring_args(c)
    c.set_defaults(func=_create)


def _create(args: argparse.Namespace) -> int:
    ring = load_keyring(args)
    payload = bytes.fromhex(args.payload_hex) if args.payload_hex else None
    print(create_credential(ring, uid=args.uid, gid=args.gid, ruid=args.ruid, context=args.context,
                            ttl=args.ttl, cluster=args.cluster, host=args.host, payload=payload,
                            use_client_ids=args.client_ids))
    return EXIT_OK
