"""``slurmauth-fast cred-create``, ``cred-verify`` and ``keys-check``: auth/slurm
credentials and keys from the shell.

Keys are found as Slurm finds them (slurm.jwks, else slurm.key, beside
slurm.conf or as given by SLURM_SACK_JWKS / SLURM_SACK_KEY / --key / --jwks),
with Slurm's permission check. ``keys-check`` validates a slurm.jwks the way
slurmctld would at start-up and lists the keys without their secrets.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Dict

from .cli import EXIT_OK, add_keyring_args, load_keyring
from .keys import SLURM_AUTH_UID_ANY
from .tokens import CONTEXTS, DEFAULT_TTL, RPC_CONTEXTS, Verifier, create_credential


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

    v = subparsers.add_parser("cred-verify", help="verify an auth/slurm credential like a Slurm daemon",
                              description="Verify an auth/slurm credential (argument or stdin) and "
                                          "print its claims as JSON.")
    v.add_argument("token", nargs="?", help="the credential (default: read stdin)")
    v.add_argument("--verifier-uid", type=int, default=os.getuid(),
                   help="uid the ruid claim must allow (default: the caller)")
    v.add_argument("--context", action="append", choices=CONTEXTS,
                   help=f"accepted context, repeatable (default: {' '.join(RPC_CONTEXTS)})")
    add_keyring_args(v)
    v.set_defaults(func=_verify)

    k = subparsers.add_parser("keys-check", help="load slurm.jwks/slurm.key like slurmctld and list keys",
                              description="Load the auth/slurm keys with every rule Slurm applies and "
                                          "list them (never the secrets).")
    add_keyring_args(k)
    k.set_defaults(func=_check)


def _create(args: argparse.Namespace) -> int:
    ring = load_keyring(args)
    payload = bytes.fromhex(args.payload_hex) if args.payload_hex else None
    print(create_credential(ring, uid=args.uid, gid=args.gid, ruid=args.ruid, context=args.context,
                            ttl=args.ttl, cluster=args.cluster, host=args.host, payload=payload,
                            use_client_ids=args.client_ids))
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    token = args.token if args.token is not None else sys.stdin.read().strip()
    verifier = Verifier(load_keyring(args), verifier_uid=args.verifier_uid,
                        contexts=tuple(args.context or RPC_CONTEXTS))
    cred = verifier.verify(token)
    out: Dict[str, Any] = {
        "uid": cred.uid, "gid": cred.gid, "host": cred.host, "cluster": cred.cluster,
        "context": cred.context, "iat": cred.iat, "exp": cred.exp, "ver": cred.ver,
        "ruid": cred.ruid, "kid": cred.kid,
        "payload_hex": cred.payload.hex() if cred.payload is not None else None,
        "id": cred.identity.to_json() if cred.identity is not None else None,
    }
    print(json.dumps(out, sort_keys=True))
    return EXIT_OK


def _check(args: argparse.Namespace) -> int:
    ring = load_keyring(args)
    for w in ring.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(json.dumps({"source": ring.source, "jwks": ring.is_jwks,
                      "keys": [{"kid": k.kid, "exp": k.exp, "default": k.default} for k in ring.keys],
                      "warnings": list(ring.warnings)},
                     sort_keys=True))
    return EXIT_OK
