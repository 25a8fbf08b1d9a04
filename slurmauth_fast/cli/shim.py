"""``slurmauth-fast shim``: run the example controller shim (:mod:`slurmauth_fast.shim`)."""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
from typing import Any, Tuple

from ..shim import DEFAULT_MAX_FRAME, ControllerShim
from ._common import add_keyring_args, load_keyring


def _listen_addr(text: str) -> Tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


async def _serve(shim: ControllerShim, args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    loop.add_signal_handler(signal.SIGHUP, shim.reload_keys)
    if args.unix:
        await shim.start_unix(args.unix)
        print(f"listening on unix:{args.unix}", flush=True)
    for host, port in args.listen or []:
        server = await shim.start_tcp(host, port)
        for sock in server.sockets:
            name = sock.getsockname()
            print(f"listening on tcp:{name[0]}:{name[1]}", flush=True)
    await stop.wait()
    await shim.close()
    if args.unix:
        try:
            os.unlink(args.unix)
        except FileNotFoundError:
            pass
    print("shim stopped", flush=True)


def _run(args: argparse.Namespace) -> int:
    if not args.unix and not args.listen:
        print("slurmauth-fast shim: give --unix PATH and/or --listen HOST:PORT")
        return 2
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(asctime)s %(name)s %(levelname)s %(message)s")
    keyring = load_keyring(args)
    shim = ControllerShim(keyring, verifier_uid=args.verifier_uid, max_frame=args.max_frame,
                          block_null_hash=args.block_null_hash,
                          block_zero_hash=args.block_zero_hash)
    asyncio.run(_serve(shim, args))
    return 0


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "shim", help="run a controller shim that verifies Slurm RPCs and answers REQUEST_PING",
        description="A stand-in for slurmctld's RPC intake: verifies each framed RPC (auth/slurm "
                    "credential and body hash) and answers REQUEST_PING as slurmctld does.")
    p.add_argument("--unix", metavar="PATH", help="listen on this unix socket")
    p.add_argument("--listen", metavar="HOST:PORT", type=_listen_addr, action="append",
                   help="listen on TCP (port 0 picks a free port; repeatable)")
    add_keyring_args(p)
    p.add_argument("--verifier-uid", type=int, default=None,
                   help="uid a credential's ruid must match (default: our uid)")
    p.add_argument("--max-frame", type=int, default=DEFAULT_MAX_FRAME,
                   help=f"largest frame accepted, bytes (default {DEFAULT_MAX_FRAME})")
    p.add_argument("--block-null-hash", action="store_true",
                   help="refuse credentials without a body hash (CommunicationParameters)")
    p.add_argument("--block-zero-hash", action="store_true",
                   help="refuse credentials with the NONE body hash (CommunicationParameters)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")
    p.set_defaults(func=_run)
