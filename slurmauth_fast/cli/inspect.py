"""``slurmauth-fast verify``, ``cred-verify`` and ``decode``: look at an
auth/slurm credential.

``verify`` checks a token exactly as slurmctld would (keys loaded like Slurm
loads them, Slurm's order of checks) and, when it is rejected, says exactly
why: the exception class, the Slurm error number and name, and the message.
``decode`` prints the header and claims WITHOUT checking anything; its output
is labelled UNVERIFIED because anyone can write any claims into a token.
``cred-verify`` is ``verify --format claims-json``, the terse JSON-only form
for scripts; both take the key options of :func:`~slurmauth_fast.cli.add_keyring_args`.
"""
from __future__ import annotations

import argparse
import base64
import binascii
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, Optional, Tuple

from .. import errors
from ..credential import CONTEXTS, RPC_CONTEXTS
from ..errors import SlurmAuthError
from ..jws import DEFAULT_MAX_TOKEN
from ..unverified import decode_unverified
from ..verifier import Verifier
from ._common import EXIT_FAILED, EXIT_OK, add_keyring_args, load_keyring, utc

if TYPE_CHECKING:  # pragma: no cover
    from ..keys import Keyring

_TIME_CLAIMS = ("iat", "exp")
_HASH_TYPES = {1: "NONE (msg_type only)", 2: "K12", 4: "SHA3-256"}


def errno_name(n: int) -> str:
    """The Slurm name of an error number (as in slurm/slurm_errno.h)."""
    for name in dir(errors):
        if (name.startswith("ESLURM_") or name.startswith("SLURM_")) and getattr(errors, name) == n:
            return name
    return "?"


def read_token(arg: Optional[str]) -> str:
    """The token from the argument, or from stdin when it is absent or '-'
    (surrounding whitespace stripped: tokens never contain any)."""
    text = sys.stdin.read() if arg in (None, "-") else arg
    return text.strip()


def describe_payload(value: Any) -> str:
    """Explain a credential's payload claim (section 3 of the wire spec)."""
    if not isinstance(value, str):
        return "not a string"
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return "not valid base64"
    if not raw:
        return "empty"
    kind = _HASH_TYPES.get(raw[0])
    if kind is None:
        return f"{len(raw)} bytes of data (not a body hash: first byte {raw[0]})"
    if raw[0] == 1 and len(raw) == 3:
        return f"hash type {kind}, msg_type {int.from_bytes(raw[1:3], 'big')}"
    return f"hash type {kind}, digest {raw[1:].hex()}"


def _print_claims(claims: Dict[str, Any]) -> None:
    width = max([6] + [len(k) for k in claims])
    for k in sorted(claims):
        v = claims[k]
        extra = ""
        if k in _TIME_CLAIMS:
            extra = f"  ({utc(v)})"
        elif k == "payload":
            extra = f"  ({describe_payload(v)})"
        elif k == "ruid" and v == 4294967295:
            extra = "  (anyone may verify)"
        print(f"  {k:<{width}}  {json.dumps(v, ensure_ascii=False)}{extra}")


def _decode(args: argparse.Namespace) -> int:
    token = read_token(args.token)
    header, claims, notes = decode_unverified(token)
    if args.json:
        print(json.dumps({"verified": False, "header": header, "claims": claims, "notes": notes}, indent=2))
        return EXIT_OK if not notes else EXIT_FAILED
    print("UNVERIFIED: decoded without checking the signature or any claim; anyone can write these values.")
    print("header:")
    _print_claims(header)
    print("claims:")
    _print_claims(claims)
    for n in notes:
        print(f"note: {n}")
    if "exp" in claims and type(claims["exp"]) is int and claims["exp"] < time.time():
        print("note: exp is in the past (Slurm would reject this credential as expired)")
    return EXIT_OK if not notes else EXIT_FAILED


def explain(exc: SlurmAuthError) -> str:
    """One line an administrator can act on: class, Slurm errno and name, message."""
    return (f"REJECTED: {type(exc).__name__} (slurm_errno {exc.slurm_errno} "
            f"{errno_name(exc.slurm_errno)}): {exc}")


def build_verifier(args: argparse.Namespace) -> Tuple[Verifier, "Keyring"]:
    """The verifier of ``verify``/``cred-verify`` and its keys. With ``--slurm-conf`` as the
    slurmctld of that slurm.conf verifies (the keys beside it unless --key/--jwks/--conf-dir
    name others, SlurmUser as the verifying uid unless --uid, AuthInfo=use_client_ids);
    without, from the key options alone."""
    contexts = tuple(args.context or RPC_CONTEXTS)
    if args.slurm_conf is None:
        keyring = load_keyring(args)       # KeyFileError -> exit 3 in cli.main
        return Verifier(keyring, verifier_uid=args.uid, contexts=contexts,
                        max_len=args.max_len), keyring
    from ..keys import Keyring
    from ..slurmconf import SlurmConfError, read_slurm_conf

    conf = read_slurm_conf(args.slurm_conf)
    if "auth/slurm" not in (conf.auth_type,) + conf.auth_alt_types:
        raise SlurmConfError(f"{args.slurm_conf}: auth/slurm is neither AuthType nor in "
                             f"AuthAltTypes (AuthType={conf.auth_type}): slurmctld would not "
                             "accept an auth/slurm credential")
    if args.key or args.jwks or args.conf_dir:
        keyring = load_keyring(args)
    else:
        keyring = Keyring.load(conf_dir=conf.conf_dir, slurm_user_uid=conf.slurm_user_uid)
    uid = conf.slurm_user_uid if args.uid is None else args.uid
    return Verifier(keyring, verifier_uid=uid, contexts=contexts, max_len=args.max_len,
                    use_client_ids=conf.use_client_ids), keyring


def _verify(args: argparse.Namespace) -> int:
    """``verify`` and ``cred-verify``: one verification, three output formats.
    ``text`` and ``json`` report a rejection on stdout (exit 1);
    ``claims-json`` (cred-verify's) prints the claims as one JSON line and
    leaves a rejection to the command line's error report (stderr, exit 1)."""
    token = read_token(args.token)
    verifier, keyring = build_verifier(args)
    try:
        cred = verifier.verify(token, now=args.now)
    except SlurmAuthError as e:
        if args.format == "claims-json":
            raise
        if args.format == "json":
            print(json.dumps({"verified": False, "error": type(e).__name__,
                              "slurm_errno": e.slurm_errno, "slurm_error": errno_name(e.slurm_errno),
                              "message": str(e)}, indent=2))
        else:
            print(explain(e))
        return EXIT_FAILED
    fields = {
        "uid": cred.uid, "gid": cred.gid, "host": cred.host, "cluster": cred.cluster,
        "context": cred.context, "iat": cred.iat, "exp": cred.exp, "ver": cred.ver,
        "ruid": cred.ruid, "kid": cred.kid,
        "payload": base64.b64encode(cred.payload).decode() if cred.payload is not None else None,
        "id": cred.identity.to_json() if cred.identity is not None else None,
    }
    if args.format == "claims-json":
        del fields["payload"]
        fields["payload_hex"] = cred.payload.hex() if cred.payload is not None else None
        print(json.dumps(fields, sort_keys=True))
        return EXIT_OK
    if args.format == "json":
        print(json.dumps({"verified": True, "key_source": keyring.source, "credential": fields}, indent=2))
        return EXIT_OK
    print(f"VERIFIED with {keyring.source}" + (f" (kid {cred.kid})" if cred.kid else ""))
    _print_claims({k: v for k, v in fields.items() if v is not None})
    return EXIT_OK


def _verify_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("token", nargs="?", help="the token ('-' or absent: read stdin)")
    p.add_argument("--slurm-conf", metavar="PATH",
                   help="verify as the slurmctld of this slurm.conf: the keys beside it, SlurmUser "
                        "as the verifying uid, AuthInfo=use_client_ids (the options below override)")
    add_keyring_args(p)
    p.add_argument("--uid", "--verifier-uid", dest="uid", type=int, metavar="UID",
                   help="verify as this uid: the ruid claim must be it or 4294967295 (default: "
                        "SlurmUser with --slurm-conf, else your uid)")
    p.add_argument("--context", action="append", choices=CONTEXTS,
                   help="accepted context (repeatable; default: auth and sack, as for an RPC)")
    p.add_argument("--now", type=int, metavar="UNIXTIME", help="check expiry at this time instead of now")
    p.add_argument("--max-len", type=int, default=DEFAULT_MAX_TOKEN, metavar="BYTES",
                   help="largest token accepted (default %(default)s)")
    p.set_defaults(func=_verify)


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "verify", help="verify an auth/slurm credential and explain any rejection",
        description="Verify an auth/slurm credential as slurmctld would: keys from slurm.jwks if "
                    "it exists, else slurm.key (paths as Slurm finds them: --jwks/--key, then "
                    "$SLURM_SACK_JWKS/$SLURM_SACK_KEY, then beside $SLURM_CONF, then /etc/slurm). "
                    "On rejection prints the exception class, the Slurm error number and name, "
                    "and the reason, and exits 1.",
        epilog="Example: slurmauth-fast verify --uid 0 \"$TOKEN\"   (or pipe the token on stdin)")
    _verify_args(p)
    p.add_argument("--format", choices=("text", "json", "claims-json"), default="text",
                   help="text (default), json (the verdict as a JSON document), or claims-json "
                        "(the claims as one JSON line; a rejection goes to stderr)")
    p.add_argument("--json", dest="format", action="store_const", const="json",
                   help="the same as --format json")

    p = subparsers.add_parser(
        "cred-verify", help="verify an auth/slurm credential, claims as one JSON line",
        description="'verify --format claims-json': verify an auth/slurm credential (argument or "
                    "stdin) and print its claims as one JSON line; a rejection is reported on "
                    "stderr (exit 1).")
    _verify_args(p)
    p.set_defaults(format="claims-json")

    p = subparsers.add_parser(
        "decode", help="show a token's header and claims WITHOUT verifying (UNVERIFIED)",
        description="Print the header and claims of a token without checking its signature, "
                    "expiry or anything else. The output is UNVERIFIED: use 'verify' to trust it.")
    p.add_argument("token", nargs="?", help="the token ('-' or absent: read stdin)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_decode)

