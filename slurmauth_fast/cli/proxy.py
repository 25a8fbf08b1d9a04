"""``slurmauth-fast proxy``: an authenticating, rate-limiting front for slurmctld
(:mod:`slurmauth_fast.proxy`)."""
from __future__ import annotations

import argparse
from typing import Any, Callable, Optional

from ..proxy import TRANSPARENCY_MODES, ControllerProxy
from ..ratelimit import RateLimitConfig
from ._serving import add_server_args, build_verifier, host_port, run, setup_logging

#: Slurm's own cap on one message (1 GiB) is far more than a front end should buffer for a
#: client it has not answered yet; the biggest real requests (job scripts) fit in 64 MiB.
DEFAULT_MAX_FRAME = 64 << 20


def _rate_limit(args: argparse.Namespace) -> Callable[[], RateLimitConfig]:
    """How the rl_* settings are read (again on SIGHUP): from slurm.conf's
    SlurmctldParameters, with the --rl-* options on top."""
    def load() -> RateLimitConfig:
        from ..slurmconf import read_slurm_conf

        params = read_slurm_conf(args.slurm_conf).slurmctld_parameters if args.slurm_conf else ""
        extra = [f"rl_{name}={value}" for name, value in (
            ("table_size", args.rl_table_size), ("bucket_size", args.rl_bucket_size),
            ("refill_rate", args.rl_refill_rate), ("refill_period", args.rl_refill_period),
            ("log_freq", args.rl_log_freq)) if value is not None]
        # conf_get_opt_str takes the first match: the options go first
        parts = (["rl_enable"] if args.rl_enable else []) + extra + ([params] if params else [])
        return RateLimitConfig.from_slurmctld_parameters(",".join(parts))
    return load


def _run(args: argparse.Namespace) -> int:
    if not args.listen and not args.unix:
        print("slurmauth-fast proxy: give --listen HOST:PORT and/or --unix PATH")
        return 2
    setup_logging(args, "proxy")
    verifier = build_verifier(args)
    load_rl = _rate_limit(args)
    slurm_user_uid: Optional[int] = None
    if args.slurm_conf:
        from ..slurmconf import read_slurm_conf
        slurm_user_uid = read_slurm_conf(args.slurm_conf).slurm_user_uid
    upstream = args.upstream_unix if args.upstream_unix else args.upstream
    proxy = ControllerProxy(verifier, upstream, rate_limit=load_rl(),
                            slurm_user_uid=slurm_user_uid if slurm_user_uid is not None else 0,
                            exempt_msg_types=args.rl_exempt or (), transparent=args.transparent,
                            conf_loader=load_rl, max_frame=args.max_frame)
    if args.metrics and proxy.metrics is not None:
        host, port = args.metrics
        print(f"metrics on http://{host}:{proxy.metrics.serve(host, port)}/metrics", flush=True)
    try:
        return run(proxy, args, "proxy")
    finally:
        if proxy.metrics is not None:
            proxy.metrics.close()


def _msg_types(text: str) -> list:
    try:
        return [int(t) for t in text.split(",") if t]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected message type numbers like 1008,2001, got {text!r}") from None


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "proxy", help="run an authenticating, rate-limiting front for slurmctld",
        description="Verifies every RPC before it reaches slurmctld (forged, expired and replayed "
                    "ones get rc 1007 here), applies Slurm's rl_* rate limit per uid (rc 1804, "
                    "Slurm's back-off), relays the rest byte for byte to slurmctld on a new "
                    "connection from the client's own address, and the reply back.")
    up = p.add_mutually_exclusive_group(required=True)
    up.add_argument("--upstream", type=host_port, metavar="HOST:PORT", help="slurmctld's address")
    up.add_argument("--upstream-unix", metavar="PATH", help="slurmctld on a unix socket")
    p.add_argument("--transparent", choices=TRANSPARENCY_MODES, default="auto",
                   help="open upstream connections from the client's address: auto (loopback "
                        "clients by bind, remote ones with IP_TRANSPARENT when allowed), on "
                        "(always; needs CAP_NET_ADMIN), off (slurmctld sees the proxy)")
    p.add_argument("--metrics", type=host_port, metavar="HOST:PORT",
                   help="serve Prometheus metrics on http://HOST:PORT/metrics")
    g = p.add_argument_group("rate limit (SlurmctldParameters rl_*; read from --slurm-conf too)")
    g.add_argument("--rl-enable", action="store_true", help="enable the per-uid rate limit")
    g.add_argument("--rl-bucket-size", type=int, metavar="N", help="tokens per bucket (30)")
    g.add_argument("--rl-refill-rate", type=int, metavar="N", help="tokens added per period (2)")
    g.add_argument("--rl-refill-period", type=int, metavar="S", help="seconds per period (1)")
    g.add_argument("--rl-table-size", type=int, metavar="N", help="uid table slots (8192)")
    g.add_argument("--rl-log-freq", type=int, metavar="S",
                   help="seconds between log lines per uid; -1 never, 0 always (0)")
    g.add_argument("--rl-exempt", type=_msg_types, metavar="TYPES",
                   help="message type numbers never limited, e.g. 1008 (REQUEST_PING)")
    add_server_args(p, default_max_frame=DEFAULT_MAX_FRAME)
    p.set_defaults(func=_run)
