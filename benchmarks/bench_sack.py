#!/usr/bin/env python3
"""SACK kiosk round trips per second over the real unix socket.

Starts ``slurmauth-fast sackd`` as its own process (as deployed) on a
generated key, then measures SACK_CREATE and SACK_VERIFY round trips (connect,
request, reply, close: one request per connection, as Slurm does) from one
client, then from several client processes at once. Short: a few seconds.
"""
from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from typing import Callable

from slurmauth_fast import errors, sack
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY

PAYLOAD = b"\x02" + bytes(32)  # a K12 body-hash payload, as auth/slurm sends


def rate(fn: Callable[[], object], seconds: float) -> float:
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(100):
            fn()
        n += 100
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n / elapsed


def _worker(args: "tuple[str, str, float]") -> float:
    kind, path, seconds = args
    if kind == "create":
        return rate(lambda: sack.sack_create(SLURM_AUTH_UID_ANY, PAYLOAD, socket_path=path), seconds)
    token = sack.sack_create(SLURM_AUTH_UID_ANY, PAYLOAD, socket_path=path)
    return rate(lambda: sack.sack_verify(token, socket_path=path), seconds)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--clients", type=int, default=4, help="client processes for the concurrent run")
    ap.add_argument("--use-client-ids", action="store_true", help="run the kiosk with use_client_ids")
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="bench-sack-")
    key, path = os.path.join(tmp, "slurm.key"), os.path.join(tmp, "sack.socket")
    with open(os.open(key, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
        f.write(os.urandom(32))
    cmd = [sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--socket", path, "--key", key]
    daemon = subprocess.Popen(cmd + (["--use-client-ids"] if args.use_client_ids else []))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                sack.sack_create(0, socket_path=path)
                break
            except errors.SackConnectError:
                if daemon.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("sackd did not start")
                time.sleep(0.05)
        print(f"kiosk: slurmauth-fast sackd (own process){', use_client_ids' if args.use_client_ids else ''}; "
              f"{os.cpu_count()} CPUs")
        print(f"{'rpc':<14}{'clients':>8}{'round trips/s':>16}")
        for kind in ("create", "verify"):
            one = _worker((kind, path, args.seconds))
            print(f"{'SACK_' + kind.upper():<14}{1:>8}{one:>16,.0f}")
            with multiprocessing.get_context("fork").Pool(args.clients) as pool:
                many = sum(pool.map(_worker, [(kind, path, args.seconds)] * args.clients))
            print(f"{'SACK_' + kind.upper():<14}{args.clients:>8}{many:>16,.0f}")
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(30)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
