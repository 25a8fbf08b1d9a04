"""``slurmauth-fast token`` and ``slurmauth-fast jwt-verify``: auth/jwt from the shell.

``token`` does what ``scontrol token`` gets slurmctld to do, locally with the
key file, and prints ``SLURM_JWT=<token>`` exactly as scontrol does, so
``export $(slurmauth-fast token)`` works the same way. ``jwt-verify`` checks
a token (argument or ``$SLURM_JWT``) as slurmctld would and prints the result
as JSON.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Optional

from .. import jwt as slurm_jwt
from ..errors import KeyFileError
from ._common import EXIT_OK, EXIT_USAGE, slurm_user_arg


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--auth-alt-parameters", metavar="STR",
                   help='AuthAltParameters, e.g. "jwt_key=/etc/slurm/jwt_hs256.key,disable_token_creation"')
    p.add_argument("--state-save-location", metavar="DIR",
                   help="StateSaveLocation: the key is DIR/jwt_hs256.key unless jwt_key= is given")
    p.add_argument("--slurm-user", type=slurm_user_arg, default=0, metavar="NAME|UID",
                   help="SlurmUser (default root): may act and mint for other users")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser("token", help="mint an auth/jwt token like 'scontrol token'",
                              description="Mint an HS256 auth/jwt token like 'scontrol token' and print "
                                          "SLURM_JWT=<token>.")
    p.add_argument("--username", metavar="U", help="user the token is for (default: the caller)")
    p.add_argument("--lifespan", type=int, default=slurm_jwt.DEFAULT_LIFESPAN, metavar="N",
                   help=f"lifespan in seconds (default {slurm_jwt.DEFAULT_LIFESPAN})")
    p.add_argument("--key", metavar="PATH", help="the HS256 key file (overrides jwt_key= and DIR)")
    p.add_argument("--client-ids", action="store_true",
                   help="also put the user's uid, gid and id object into the token (for use_jwt_client_ids; "
                        "scontrol never does)")
    _common(p)
    p.set_defaults(func=_token)

    v = subparsers.add_parser("jwt-verify", help="verify an auth/jwt token like slurmctld",
                              description=f"Verify an auth/jwt token (argument or ${slurm_jwt.ENV_TOKEN}) "
                                          "like slurmctld and print the result as JSON.")
    v.add_argument("token", nargs="?", help=f"the token (default: ${slurm_jwt.ENV_TOKEN})")
    v.add_argument("--username", metavar="U", help="the username the client packed beside the token")
    _common(v)
    v.set_defaults(func=_verify)


def _params(args: argparse.Namespace) -> slurm_jwt.AuthAltParameters:
    return slurm_jwt.AuthAltParameters.parse(args.auth_alt_parameters)


def _token(args: argparse.Namespace) -> int:
    params = _params(args)
    path: Optional[str] = args.key or params.hs256_key_path(args.state_save_location)
    if path is None:
        raise KeyFileError("no HS256 key: token creation needs jwt_key= (a jwks holds only public keys)")
    key = slurm_jwt.load_hs256_key(path, slurm_user_uid=args.slurm_user)
    with key:
        token = slurm_jwt.create_token(key, args.username, lifespan=args.lifespan,
                                       slurm_user_uid=args.slurm_user,
                                       disable_token_creation=params.disable_token_creation,
                                       client_ids=args.client_ids)
    print(f"SLURM_JWT={token}")
    return EXIT_OK


def _verify(args: argparse.Namespace) -> int:
    token = args.token or os.environ.get(slurm_jwt.ENV_TOKEN)
    if not token:
        print(f"slurmauth-fast: no token given and ${slurm_jwt.ENV_TOKEN} is not set", file=sys.stderr)
        return EXIT_USAGE
    verifier = slurm_jwt.JWTVerifier.from_config(_params(args), state_save_location=args.state_save_location,
                                                 slurm_user_uid=args.slurm_user)
    cred = verifier.verify(token, username=args.username)
    out = {"username": cred.username, "acting_for": cred.acting_for, "uid": cred.uid, "gid": cred.gid,
           "iat": cred.iat, "exp": cred.exp, "alg": cred.alg, "kid": cred.kid,
           "id": cred.identity.to_json() if cred.identity is not None else None}
    print(json.dumps(out, sort_keys=True))
    return EXIT_OK
