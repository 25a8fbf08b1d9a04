#!/usr/bin/env python3
"""SACK kiosk round trips per second over the real unix socket: our kiosk against
Slurm's own ``sackd``, in ONE run, with the same client for both.

Starts ``slurmauth-fast sackd`` (twice: its Python loop and its C loop) as its own process (as deployed) and, where Slurm is
built (tools/build-slurm.sh), a real ``sackd`` on a private slurm.conf with the same
key (its own runtime directory, local config: no slurmctld needed), then drives each
with ``benchmarks/native/loadgen.c`` (cc -O2): one connection per request (connect,
request, reply, close), as libslurm's auth/slurm client does (src/plugins/auth/slurm/
sack.c), from 1 and from ``--clients`` processes, SACK_CREATE and SACK_VERIFY, in
interleaved rounds (the best round counts: background load hurts all alike). A third
``slurmauth-fast sackd --python-loop`` row is the kiosk's Python selectors loop, the
``(C loop, the default)`` row its C loop (csrc/sack_serve.c). The last row, the loopback limit, is a C epoll server answering fixed bytes without any work
(``benchmarks/native/fixed_reply_server.c``): no kiosk can go faster on this machine.

``--client python`` uses the package's client (``slurmauth_fast.sack.sack_create`` /
``sack_verify``, one process per client) for both kiosks instead.

    python benchmarks/bench_sack.py [--seconds 2] [--clients 4] [--rounds 3]
        [--client c|python] [--use-client-ids [--identity-cache S]] [--no-slurm] [--json PATH]
        [--markdown PATH]
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
TESTS = os.path.join(os.path.dirname(HERE), "tests")
sys.path.insert(0, os.path.dirname(HERE))  # the package, when run from a checkout
sys.path.insert(0, HERE)

from bench_serve import compile_native, write_results  # noqa: E402  (native helpers, result files)

from slurmauth_fast import errors, sack  # noqa: E402
from slurmauth_fast.keys import SLURM_AUTH_UID_ANY, Keyring  # noqa: E402
from slurmauth_fast.tokens import create_credential  # noqa: E402

PAYLOAD = b"\x02" + bytes(32)  # a K12 body-hash payload, as auth/slurm sends
OURS, SACKD, FIXED = "slurmauth-fast sackd --python-loop", "Slurm sackd", "loopback limit (fixed reply, C)"
OURS_C = "slurmauth-fast sackd (C loop, the default)"
#: (label, want, rpc, clients ("1" or "N"), minimum ratio ours / Slurm sackd)
TARGETS = [("SACK_CREATE, 1 client: ours vs Slurm sackd", ">= 4x", "create", "1", 4.0),
           ("SACK_CREATE, N clients: ours vs Slurm sackd", ">= 4x", "create", "N", 4.0)]


def c_client(exe: str, request: str, path: str, clients: int, seconds: float) -> Dict[str, Any]:
    """loadgen: ``clients`` processes, one connection per request; the reply is
    length-prefixed (SACK_CREATE: packstr token; SACK_VERIFY: uint32 rc 0 reads as an
    empty frame)."""
    out = subprocess.run([exe, "--frame", request, "--unix", path, "--procs", str(clients),
                          "--seconds", str(seconds)], check=True, capture_output=True, text=True)
    r = json.loads(out.stdout)
    return {"rps": r["ok"] / r["seconds"], "ok": r["ok"], "failed": r["closed"] + r["errors"]}


def rate(fn: Callable[[], object], seconds: float) -> Tuple[int, float]:
    n = 0
    start = time.perf_counter()
    while True:
        for _ in range(50):
            fn()
        n += 50
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return n, elapsed


def _py_worker(args: Tuple[str, str, str, float]) -> Tuple[int, float]:
    kind, path, token, seconds = args
    if kind == "create":
        return rate(lambda: sack.sack_create(SLURM_AUTH_UID_ANY, PAYLOAD, socket_path=path), seconds)
    return rate(lambda: sack.sack_verify(token, socket_path=path), seconds)


def py_client(kind: str, path: str, token: str, clients: int, seconds: float) -> Dict[str, Any]:
    """The package's client, one process per client (a failure raises)."""
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        done = pool.map(_py_worker, [(kind, path, token, seconds)] * clients)
    ok = sum(n for n, _ in done)
    return {"rps": sum(n / t for n, t in done), "ok": ok, "failed": 0}


def wait_for_kiosk(path: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sack.sack_create(0, socket_path=path)
            return
        except errors.SackConnectError:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"the kiosk at {path} did not start")
            time.sleep(0.05)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    ap.add_argument("--clients", type=int, default=4, help="client processes for the concurrent rows")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best counts")
    ap.add_argument("--client", choices=("c", "python"), default="c",
                    help="c: benchmarks/native/loadgen.c; python: the package's SACK client")
    ap.add_argument("--use-client-ids", action="store_true", help="run our kiosk with use_client_ids")
    ap.add_argument("--identity-cache", type=float, default=0.0, metavar="S",
                    help="with --use-client-ids: the C loop kiosk's --identity-cache (default 0)")
    ap.add_argument("--no-slurm", action="store_true", help="skip the Slurm sackd rows")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--markdown", metavar="PATH")
    args = ap.parse_args(argv)

    sys.path.insert(0, TESTS)
    import daemons
    import real_slurm  # the test suite's Slurm fixtures: the same slurm.conf and sackd the tests run

    key = os.urandom(64)
    token = create_credential(Keyring.from_key_bytes(key), uid=os.getuid(), gid=os.getgid(),
                              context="sack", ruid=SLURM_AUTH_UID_ANY, payload=PAYLOAD,
                              ttl=3600)  # valid through every round of a long run
    servers: Dict[str, str] = {}
    skipped: Dict[str, str] = {}
    procs: List[subprocess.Popen] = []
    cluster = daemon = None
    # results[kind][clients][server] = best round, with every round's rate
    results: Dict[str, Dict[int, Dict[str, Dict[str, Any]]]] = {}
    tmp = tempfile.mkdtemp(prefix="bench-sack-")
    try:
        exes = compile_native(tmp, ("loadgen", "fixed_reply_server"))
        keyfile, ours = os.path.join(tmp, "slurm.key"), os.path.join(tmp, "sack.socket")
        with open(os.open(keyfile, os.O_WRONLY | os.O_CREAT, 0o600), "wb") as f:
            f.write(key)
        requests = {"create": os.path.join(tmp, "create.req"), "verify": os.path.join(tmp, "verify.req")}
        for kind, data in (("create", sack.encode_create_request(SLURM_AUTH_UID_ANY, PAYLOAD)),
                           ("verify", sack.encode_verify_request(token))):
            with open(requests[kind], "wb") as f:
                f.write(data)
        # the loopback limit: a 24-byte length-prefixed frame answered with 24 fixed bytes
        fixed_req = os.path.join(tmp, "fixed.req")
        with open(fixed_req, "wb") as f:
            f.write((20).to_bytes(4, "big") + bytes(20))
        fixed_sock = os.path.join(tmp, "fixed.socket")
        p = subprocess.Popen([exes["fixed_reply_server"], "--unix", fixed_sock],
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        procs.append(p)
        assert p.stdout is not None
        p.stdout.readline()

        cmd = [sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--python-loop", "--socket", ours,
               "--key", keyfile]
        p = subprocess.Popen(cmd + (["--use-client-ids"] if args.use_client_ids else []))
        procs.append(p)
        wait_for_kiosk(ours, p)
        servers[OURS] = ours
        ours_c = os.path.join(tmp, "ours-c.socket")
        cmd = [sys.executable, "-m", "slurmauth_fast.cli", "sackd", "--native", "--socket", ours_c,
               "--key", keyfile, "--identity-cache", str(args.identity_cache)]
        p = subprocess.Popen(cmd + (["--use-client-ids"] if args.use_client_ids else []))
        procs.append(p)
        wait_for_kiosk(ours_c, p)
        servers[OURS_C] = ours_c
        why = "--no-slurm" if args.no_slurm else real_slurm.why_not_built()
        if why is None:
            cluster = real_slurm.SlurmCluster(key=key, debug="error")  # slurm.conf only: no slurmctld
            daemon = real_slurm.Sackd(cluster).start()
            servers[SACKD] = str(daemon.socket)
        else:
            skipped["Slurm sackd rows"] = why

        counts = sorted({1, args.clients})
        for _ in range(args.rounds):
            for kind in ("create", "verify"):
                for clients in counts:
                    row = results.setdefault(kind, {}).setdefault(clients, {})
                    for name, path in servers.items():
                        if args.client == "c":
                            r = c_client(exes["loadgen"], requests[kind], path, clients, args.seconds)
                        else:
                            r = py_client(kind, path, token, clients, args.seconds)
                        best = row.setdefault(name, {"rps": 0.0, "failed": 0, "rounds": []})
                        best["rounds"].append(round(r["rps"]))
                        best["failed"] += r["failed"]
                        best["rps"] = max(best["rps"], r["rps"])
                    if kind == "create" and args.client == "c":  # once per client count
                        r = c_client(exes["loadgen"], fixed_req, fixed_sock, clients, args.seconds)
                        best = row.setdefault(FIXED, {"rps": 0.0, "failed": 0, "rounds": []})
                        best["rounds"].append(round(r["rps"]))
                        best["failed"] += r["failed"]
                        best["rps"] = max(best["rps"], r["rps"])
    finally:
        for p in procs:
            daemons.terminate(p, 30)
        if daemon is not None:
            daemon.stop()
        if cluster is not None:
            cluster.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)
    return report(args, results, skipped)


def report(args: argparse.Namespace, results: Dict[str, Dict[int, Dict[str, Dict[str, Any]]]],
           skipped: Dict[str, str]) -> int:
    client = ("benchmarks/native/loadgen.c" if args.client == "c" else "the package's SACK client")
    lines = [f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, client: "
             f"{client}, one connection per request, best of {args.rounds} rounds x {args.seconds} s"
             f"{'; our kiosk with use_client_ids' if args.use_client_ids else ''}"
             f"{f' (C loop: identity cache {args.identity_cache:g} s)' if args.identity_cache else ''}", "",
             "| rpc | clients | server | round trips/s | x Slurm sackd | failed | rounds |",
             "|---|---:|---|---:|---:|---:|---|"]
    for kind, by_clients in results.items():
        for clients, row in by_clients.items():
            base = row.get(SACKD, {}).get("rps")
            for name, r in row.items():
                ratio = f"{r['rps'] / base:.2f}x" if base else "-"
                lines.append(f"| SACK_{kind.upper()} | {clients} | {name} | {r['rps']:,.0f} | {ratio} | "
                             f"{r['failed']} | {r['rounds']} |")
    lines += ["", "| target | want | got | |", "|---|---|---:|---|"]
    verdicts: Dict[str, bool] = {}
    for (label, want, kind, which, minimum), ours in [(t, o) for o in (OURS, OURS_C) for t in TARGETS]:
        clients = 1 if which == "1" else args.clients
        label = label.replace("N clients", f"{clients} clients")
        if ours == OURS_C:
            label = label.replace("ours", "ours (C loop)")
        row = results.get(kind, {}).get(clients, {})
        if ours in row and SACKD in row:
            got = row[ours]["rps"] / row[SACKD]["rps"]
            clean = row[ours]["failed"] == row[SACKD]["failed"] == 0
            verdicts[label] = got >= minimum and clean
            lines.append(f"| {label} | {want} | {got:.2f}x | "
                         f"{'met' if verdicts[label] else 'NOT met'}{'' if clean else ' (failures)'} |")
        else:
            lines.append(f"| {label} | {want} | - | skipped |")
    for what, why in skipped.items():
        lines.append(f"\n{what} skipped: {why}")
    text = "\n".join(lines)
    print(text)
    doc = {"clients": args.clients, "seconds": args.seconds, "rounds": args.rounds, "client": args.client,
           "use_client_ids": args.use_client_ids, "identity_cache": args.identity_cache,
           "results": {k: {str(c): row for c, row in v.items()} for k, v in results.items()},
           "targets": verdicts, "skipped": skipped}
    write_results(doc, text, args.json, args.markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
