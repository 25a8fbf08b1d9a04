"""``slurmauth-fast sackd``: run a SACK kiosk, like Slurm's sackd.

The kiosk (:mod:`slurmauth_fast.sack.server`) is imported when the command
runs, so building this parser loads no server code.
"""
from __future__ import annotations

import argparse
import logging
from typing import Any

from ._common import add_keyring_args, load_keyring

#: Daemons whose kiosk socket path Slurm fixes (sack.SERVER_ROLES).
ROLES = ("sackd", "slurmctld", "slurmdbd")


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "sackd", help="run a SACK auth kiosk (compatible with Slurm's sackd)",
        description="Serve SACK_CREATE/SACK_VERIFY on a unix socket (mode 0666). "
                    "SIGHUP reloads the keys, SIGTERM stops and removes the socket.")
    p.add_argument("--socket", metavar="PATH",
                   help="socket path (default: by --role; sackd: $RUNTIME_DIRECTORY/sack.socket "
                        "or /run/slurm/sack.socket)")
    p.add_argument("--role", choices=ROLES, default="sackd",
                   help="use Slurm's socket path for this daemon (default sackd)")
    add_keyring_args(p)
    p.add_argument("--use-client-ids", action="store_true",
                   help="add the caller's identity ('id' object) to credentials (AuthInfo=use_client_ids)")
    p.add_argument("--identity-cache", type=_non_negative, default=0.0, metavar="SECONDS",
                   help="with --use-client-ids and the C loop: sign with a uid's looked-up identity "
                        "for this long before looking it up again (default 0: every request)")
    loop = p.add_mutually_exclusive_group()
    loop.add_argument("--native", dest="native", action="store_const", const=True,
                      help="serve with the C loop: accepting, caps, deadlines and SACK_CREATE "
                           "signing in C (the default, unless SLURMAUTH_FAST_SACK_NATIVE=0)")
    loop.add_argument("--python-loop", dest="native", action="store_const", const=False,
                      help="serve with the Python loop instead")
    p.add_argument("--cluster", metavar="NAME", help="ClusterName to put into credentials")
    p.add_argument("--ttl", type=_positive(int), default=60, help="credential lifespan in seconds (default 60)")
    p.add_argument("--timeout", type=_positive(float), default=10.0,
                   help="seconds a client may take for its whole exchange, lookup and reply "
                        "included (default 10)")
    p.add_argument("--read-timeout", type=_positive(float), default=2.0, metavar="SECONDS",
                   help="seconds a client may take to send its whole request (default 2)")
    p.add_argument("--max-connections", type=_positive(int), default=1024, metavar="N",
                   help="connections served at once; more wait in the backlog (default 1024)")
    p.add_argument("--max-connections-per-uid", type=_positive(int), metavar="N",
                   help="connections one peer uid (root and SlurmUser too) may hold; more are closed "
                        "at once (default 64, at most half of --max-connections)")
    p.add_argument("--uid-max-connections", type=_uid_cap, action="append", default=[],
                   metavar="UID=N", help="give one uid its own cap (repeatable; at most half of "
                                         "--max-connections)")
    p.add_argument("--log-interval", type=_non_negative, default=10.0, metavar="SECONDS",
                   help="at most one log line per kind of refusal per this many seconds, with a "
                        "count of the rest (default 10)")
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging (repeatable)")
    p.set_defaults(func=_cmd_sackd)


def _positive(kind: Any) -> Any:
    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = 0
        if not value > 0:
            raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
        return value
    parse.__name__ = kind.__name__
    return parse


def _non_negative(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a non-negative number")
    return value


def _uid_cap(text: str) -> "tuple[int, int]":
    uid, sep, cap = text.partition("=")
    try:
        if sep and int(uid) >= 0 and int(cap) > 0:
            return int(uid), int(cap)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not UID=N (N a positive integer)")


def _cmd_sackd(args: argparse.Namespace) -> int:
    from ..sack import SackServer

    logging.basicConfig(level=logging.WARNING - 10 * min(args.verbose, 2),
                        format="sackd: %(levelname)s: %(message)s")
    keyring = load_keyring(args)
    server = SackServer(keyring, socket_path=args.socket, role=args.role,
                        use_client_ids=args.use_client_ids, cluster=args.cluster, ttl=args.ttl,
                        request_timeout=args.timeout, read_timeout=args.read_timeout,
                        max_connections=args.max_connections,
                        max_connections_per_uid=args.max_connections_per_uid,
                        uid_max_connections=dict(args.uid_max_connections),
                        log_interval=args.log_interval, native=args.native, identity_cache=args.identity_cache)
    server.bind()
    server.install_signal_handlers()
    try:
        server.serve_forever()
    finally:
        server.close()
    return 0
