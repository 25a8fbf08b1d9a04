"""What ``shim`` and ``proxy`` share: where to listen, how the frame verifier is configured
(from slurm.conf, or from the key options), and running a front end until a signal."""
from __future__ import annotations

import argparse
import logging
import os
import signal
from typing import TYPE_CHECKING, Any, List, Tuple

from ._common import add_keyring_args, load_keyring

if TYPE_CHECKING:  # pragma: no cover
    from ..frame_verifier import FrameVerifier
    from ..frontend import FrontEnd


def host_port(text: str) -> Tuple[str, int]:
    """HOST:PORT (``[v6]:port`` too; an empty host is 127.0.0.1)."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT, got {text!r}")
    return host.strip("[]") or "127.0.0.1", int(port)


def add_server_args(p: argparse.ArgumentParser, *, default_max_frame: int) -> None:
    p.add_argument("--unix", metavar="PATH", help="listen on this unix socket")
    p.add_argument("--listen", metavar="HOST:PORT", type=host_port, action="append",
                   help="listen on TCP (port 0 picks a free port; repeatable)")
    p.add_argument("--slurm-conf", metavar="PATH",
                   help="decide as the slurmctld of this slurm.conf: AuthType/AuthAltTypes, keys "
                        "beside it, SlurmUser, AuthInfo, CommunicationParameters, HashPlugin, "
                        "AuthAltParameters (the options below then only override the keys)")
    add_keyring_args(p)
    p.add_argument("--verifier-uid", type=int, default=None,
                   help="uid a credential's ruid must match (default: SlurmUser with "
                        "--slurm-conf, else our uid)")
    p.add_argument("--use-client-ids", action="store_true",
                   help="read the credential's \"id\" object (AuthInfo=use_client_ids)")
    p.add_argument("--hash-plugin", action="append", metavar="NAME",
                   help="a loaded hash plugin, k12 or sha3 (HashPlugin; default k12; repeatable)")
    p.add_argument("--block-null-hash", action="store_true",
                   help="refuse credentials without a body hash (CommunicationParameters)")
    p.add_argument("--block-zero-hash", action="store_true",
                   help="refuse credentials with the NONE body hash (CommunicationParameters)")
    p.add_argument("--max-frame", type=int, default=default_max_frame,
                   help=f"largest frame accepted, bytes (default {default_max_frame})")
    p.add_argument("-v", "--verbose", action="store_true", help="log every request")


def build_verifier(args: argparse.Namespace) -> "FrameVerifier":
    from ..frame_verifier import FrameVerifier
    from ..verifier import Verifier

    explicit_keys = bool(args.key or args.jwks or args.conf_dir)
    if args.slurm_conf:
        return FrameVerifier.from_slurm_conf(
            args.slurm_conf, keyring=load_keyring(args) if explicit_keys else None,
            verifier_uid=args.verifier_uid, max_frame=args.max_frame)
    slurm = Verifier(load_keyring(args), verifier_uid=args.verifier_uid,
                     use_client_ids=args.use_client_ids)
    return FrameVerifier(slurm, block_null_hash=args.block_null_hash,
                         block_zero_hash=args.block_zero_hash,
                         hash_plugins=tuple(args.hash_plugin or ("k12",)), max_frame=args.max_frame)


def setup_logging(args: argparse.Namespace, name: str) -> None:
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format=f"%(asctime)s {name} %(levelname)s %(message)s")


def listen(front: "FrontEnd", args: argparse.Namespace) -> List[str]:
    """Open the listeners; their names, as printed ("unix:PATH", "tcp:HOST:PORT")."""
    names = []
    if args.unix:
        front.core.listen_unix(args.unix)
        names.append(f"unix:{args.unix}")
    for host, port in args.listen or []:
        bound = front.core.listen_tcp(host, port)
        names.append(f"tcp:{host}:{bound}")
    return names


def run(front: "FrontEnd", args: argparse.Namespace, name: str, drain_seconds: float = 10.0) -> int:
    """Listen, serve until SIGINT/SIGTERM (SIGHUP reloads), drain what is in flight, stop."""
    for where in listen(front, args):
        print(f"listening on {where}", flush=True)

    def stop(signum: int, frame: Any) -> None:
        front.stop()

    def reload(signum: int, frame: Any) -> None:
        front.reload()

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, reload)
    try:
        front.serve_forever()
        if not front.drain(drain_seconds):
            logging.getLogger(f"slurmauth_fast.{name}").warning(
                "stopped with requests still in flight after %.0fs", drain_seconds)
    finally:
        front.close()
        if args.unix:
            try:
                os.unlink(args.unix)
            except FileNotFoundError:
                pass
    print(f"{name} stopped", flush=True)
    return 0
