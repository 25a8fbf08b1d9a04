"""The front end at wire speed: every server on the path, in ONE run, on the same frame, with
the connection pattern Slurm clients use (one connection per RPC).

Compiles ``benchmarks/native/loadgen.c`` and ``fixed_reply_server.c`` (cc -O2), then drives
each server with the load generator (``--procs`` processes, one connection per RPC,
``--seconds`` each), in interleaved rounds (the best round counts: background load hurts all
alike):

* ``fixed``: a single-threaded C epoll server answering every frame with fixed bytes, no
  verification: the loopback limit;
* ``shim``: ``slurmauth-fast shim`` (the serving core: auth/slurm verified in C, each verified
  ping answered from Python);
* ``proxy -> fixed``: ``slurmauth-fast proxy`` relaying every verified frame to the fixed
  server, from the client's own address;
* ``proxy, forged``: the same proxy fed frames signed with another key (shed in C, rc 1007);
* ``shim, use_client_ids`` and ``proxy -> fixed, use_client_ids``: both run with
  ``--use-client-ids`` and fed frames whose token carries the "id" identity, as every client's
  does under AuthInfo=use_client_ids: the core reads that object as JSON only, so the first
  request with a given "id" is decided by the verifier in Python, which approves a well-formed
  identity in the core for the requests after it;
* ``bare relay -> fixed``: ``benchmarks/native/bare_relay.c``, a C relay that does nothing but
  relay (no verification, no policy, no Python; upstream connections bound to the client's IP
  like the proxy's): what two TCP connections per RPC cost, the ceiling of any relay;
* where Slurm is built (tools/build-slurm.sh): ``slurmctld`` alone (auth/slurm, the same key),
  ``proxy -> slurmctld`` and ``bare relay -> slurmctld``;
* a forged flood (``--procs - 1`` processes of forged frames) with one legitimate client
  beside it: the legitimate client's rate through the proxy, and against slurmctld alone;
* memory under a flood of stalled connections: ``--stalled`` connections that each send a
  frame header announcing 1 MiB and part of a token, then stall; the proxy's RSS before and
  during.

    python benchmarks/bench_serve.py [--procs 4] [--seconds 2] [--rounds 3]
        [--json benchmarks/results/bench_serve.json] [--markdown ...] [--png ...]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join(HERE, "native")
TESTS = os.path.join(os.path.dirname(HERE), "tests")

#: (name, want, numerator row, denominator row, minimum ratio)
TARGETS = [
    ("shim vs fixed-reply server", ">= 0.6x", "shim", "fixed", 0.6),
    ("forged frames shed by the proxy vs fixed-reply server", ">= 0.5x", "proxy, forged", "fixed", 0.5),
    ("slurmctld behind the proxy vs slurmctld alone", ">= 0.85x", "proxy -> slurmctld", "slurmctld", 0.85),
]

#: (name, numerator row, denominator row): what bounds the last target on this machine. Every
#: process shares the same CPUs, so whatever a relay spends per RPC is taken from slurmctld.
CEILINGS = [
    ("slurmctld behind the bare relay vs slurmctld alone (any relay's ceiling)",
     "bare relay -> slurmctld", "slurmctld"),
    ("slurmctld behind the proxy vs behind the bare relay", "proxy -> slurmctld",
     "bare relay -> slurmctld"),
    ("proxy vs bare relay, both in front of the fixed server", "proxy -> fixed",
     "bare relay -> fixed"),
]


def compile_native(out_dir: str, names: Sequence[str] = ("loadgen", "fixed_reply_server",
                                                         "bare_relay")) -> Dict[str, str]:
    """Compile these helpers of benchmarks/native (cc -O2) into out_dir: name -> executable."""
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise SystemExit(f"no C compiler ({cc}) on PATH")
    exes = {}
    for name in names:
        exe = os.path.join(out_dir, name)
        subprocess.run([cc, "-std=c99", "-O2", os.path.join(NATIVE, name + ".c"), "-o", exe],
                       check=True)
        exes[name] = exe
    return exes


def start(cmd: List[str], env: Optional[Dict[str, str]] = None) -> Tuple[subprocess.Popen, str]:
    """Start a server that prints its address first ("port N" or "listening on tcp:H:P")."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                         env=env)
    assert p.stdout is not None
    line = p.stdout.readline().strip()
    if not line:
        p.kill()
        raise RuntimeError(f"{cmd[:3]} did not start")
    return p, line.rsplit(":", 1)[1] if line.startswith("listening") else line.split()[1]


def loadgen(exe: str, frame: str, port: str, procs: int, seconds: float, rc: int) -> Dict[str, Any]:
    out = subprocess.run([exe, "--frame", frame, "--tcp", f"127.0.0.1:{port}", "--procs", str(procs),
                          "--seconds", str(seconds), "--expect-rc", str(rc)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def loadgen_pair(exe: str, flood: Tuple[str, int], legit: Tuple[str, int], port: str, procs: int,
                 seconds: float) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """A forged flood (procs - 1 processes) and one legitimate client, at once."""
    cmds = [[exe, "--frame", frame, "--tcp", f"127.0.0.1:{port}", "--procs", str(n),
             "--seconds", str(seconds), "--expect-rc", str(rc)]
            for (frame, rc), n in ((flood, max(1, procs - 1)), (legit, 1))]
    ps = [subprocess.Popen(c, stdout=subprocess.PIPE, text=True) for c in cmds]
    outs = [json.loads(p.communicate()[0]) for p in ps]
    return outs[0], outs[1]


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def stalled_flood(port: str, n: int, head: bytes) -> List[socket.socket]:
    """n connections that send ``head`` (a header announcing 1 MiB and part of a token) and stall."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", int(port)))
        s.sendall(head)
        socks.append(s)
    return socks


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--stalled", type=int, default=800, help="stalled connections (0: skip)")
    ap.add_argument("--no-slurm", action="store_true", help="skip the slurmctld rows")
    ap.add_argument("--json", metavar="PATH")
    ap.add_argument("--markdown", metavar="PATH")
    ap.add_argument("--png", metavar="PATH")
    args = ap.parse_args(argv)

    from slurmauth_fast import keys, tokens
    from slurmauth_fast.identity import Identity
    from slurmauth_fast.rpc import REQUEST_PING, body_hash_payload, pack_frame

    sys.path.insert(0, TESTS)
    import daemons
    import real_slurm  # the test suite's Slurm fixtures: the same slurm.conf the tests use

    key = os.urandom(1024)
    kr = keys.Keyring.from_key_bytes(key)
    other = keys.Keyring.from_key_bytes(os.urandom(1024))
    claims = dict(uid=1000, gid=1000, host="login01", cluster="cluster1", ruid=0,
                  payload=body_hash_payload(b"", REQUEST_PING), ttl=3600)
    good_frame = pack_frame(REQUEST_PING, b"", credential=tokens.create_credential(kr, **claims))
    forged_frame = pack_frame(REQUEST_PING, b"", credential=tokens.create_credential(other, **claims))
    alice = Identity(name="alice", gecos="Alice", dir="/home/alice", shell="/bin/bash",
                     groups={"alice": 1000, "users": 100})
    id_frame = pack_frame(REQUEST_PING, b"", credential=tokens.create_credential(
        kr, identity=alice, use_client_ids=True, **claims))
    results: Dict[str, Dict[str, Any]] = {}
    extra: Dict[str, Any] = {}
    skipped: Dict[str, str] = {}
    procs: List[subprocess.Popen] = []
    cluster = None
    with tempfile.TemporaryDirectory() as tmp:
        exes = compile_native(tmp)
        good, forged = os.path.join(tmp, "ping.frame"), os.path.join(tmp, "forged.frame")
        with_id = os.path.join(tmp, "id.frame")
        for path, data in ((good, good_frame), (forged, forged_frame), (with_id, id_frame)):
            with open(path, "wb") as f:
                f.write(data)
        keyfile = os.path.join(tmp, "slurm.key")
        with open(keyfile, "wb") as f:
            f.write(key)
        os.chmod(keyfile, 0o600)
        env = dict(os.environ, SLURM_SACK_JWKS=os.path.join(tmp, "none.jwks"))
        cli = [sys.executable, "-m", "slurmauth_fast.cli"]
        keyopts = ["--key", keyfile, "--conf-dir", tmp, "--verifier-uid", "0"]
        try:
            p, fixed = start([exes["fixed_reply_server"]])
            procs.append(p)
            p, shim = start(cli + ["shim", "--listen", "127.0.0.1:0"] + keyopts, env)
            procs.append(p)
            p, proxy_fixed = start(cli + ["proxy", "--listen", "127.0.0.1:0", "--upstream",
                                          f"127.0.0.1:{fixed}"] + keyopts, env)
            procs.append(p)
            proxy_pid = p.pid
            p, relay_fixed = start([exes["bare_relay"], "--upstream", f"127.0.0.1:{fixed}"])
            procs.append(p)
            ids = ["--use-client-ids"]
            p, shim_ids = start(cli + ["shim", "--listen", "127.0.0.1:0"] + keyopts + ids, env)
            procs.append(p)
            p, proxy_ids = start(cli + ["proxy", "--listen", "127.0.0.1:0", "--upstream",
                                        f"127.0.0.1:{fixed}"] + keyopts + ids, env)
            procs.append(p)
            targets = {"fixed": (fixed, good, 0), "shim": (shim, good, 0),
                       "proxy -> fixed": (proxy_fixed, good, 0),
                       "proxy, forged": (proxy_fixed, forged, 1007),
                       "bare relay -> fixed": (relay_fixed, good, 0),
                       "shim, use_client_ids": (shim_ids, with_id, 0),
                       "proxy -> fixed, use_client_ids": (proxy_ids, with_id, 0)}
            why = None if not args.no_slurm else "--no-slurm"
            if why is None:
                why = real_slurm.why_not_built()
            if why is None:
                cluster = real_slurm.SlurmCluster(key=key, debug="error").start()
                p, proxy_ctld = start(cli + ["proxy", "--listen", "127.0.0.1:0", "--upstream",
                                             f"127.0.0.1:{cluster.port}", "--slurm-conf",
                                             str(cluster.conf)], env)
                procs.append(p)
                p, relay_ctld = start([exes["bare_relay"], "--upstream", f"127.0.0.1:{cluster.port}"])
                procs.append(p)
                targets["slurmctld"] = (str(cluster.port), good, 0)
                targets["proxy -> slurmctld"] = (proxy_ctld, good, 0)
                targets["bare relay -> slurmctld"] = (relay_ctld, good, 0)
            else:
                skipped["slurmctld rows"] = why
            time.sleep(0.3)
            for _ in range(args.rounds):
                for name, (port, frame, rc) in targets.items():
                    r = loadgen(exes["loadgen"], frame, port, args.procs, args.seconds, rc)
                    r["rounds"] = results.get(name, {}).get("rounds", []) + [round(r["rps"])]
                    if name not in results or r["rps"] > results[name]["rps"]:
                        results[name] = r
                    else:
                        results[name]["rounds"] = r["rounds"]
            # the legitimate client during a forged flood: through the proxy, and at slurmctld
            flood_targets = {"proxy -> fixed": proxy_fixed}
            if cluster is not None:
                flood_targets.update({"proxy -> slurmctld": targets["proxy -> slurmctld"][0],
                                      "slurmctld": str(cluster.port)})
            for name, port in flood_targets.items():
                f, legit = loadgen_pair(exes["loadgen"], (forged, 1007), (good, 0), port,
                                        args.procs, args.seconds)
                extra.setdefault("flood", {})[name] = {
                    "forged_rps": f["rps"], "legit_rps": legit["rps"], "legit_errors": legit["errors"],
                    "legit_rc_mismatch": legit["rc_mismatch"]}
            if args.stalled:
                before = rss_kib(proxy_pid)
                head = good_frame[:4 + 40]                  # header and a few bytes of the token
                head = struct.pack(">I", 1 << 20) + head[4:]
                socks = stalled_flood(proxy_fixed, args.stalled, head)
                time.sleep(0.5)
                during = rss_kib(proxy_pid)
                r = loadgen(exes["loadgen"], good, proxy_fixed, 1, 1.0, 0)
                for s in socks:
                    s.close()
                extra["stalled"] = {"connections": args.stalled, "rss_before_kib": before,
                                    "rss_during_kib": during, "legit_rps_during": r["rps"]}
        finally:
            for p in procs:
                daemons.terminate(p, 10)
            if cluster is not None:
                cluster.cleanup()

    return report(args, results, extra, skipped)


def report(args: argparse.Namespace, results: Dict[str, Dict[str, Any]], extra: Dict[str, Any],
           skipped: Dict[str, str]) -> int:
    base = results["fixed"]["rps"]
    lines = [f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}, {os.cpu_count()} CPUs, "
             f"{args.procs} client processes, one connection per RPC, best of {args.rounds} rounds "
             f"x {args.seconds} s", "",
             "| server | RPCs/s | x fixed | errors | rounds |", "|---|---:|---:|---:|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['rps']:,.0f} | {r['rps'] / base:.2f}x | "
                     f"{r['errors'] + r['rc_mismatch']} | {r['rounds']} |")
    if "flood" in extra:
        lines += ["", f"| forged flood ({max(1, args.procs - 1)} processes) + 1 legitimate client "
                      "| forged RPCs/s | legitimate RPCs/s |", "|---|---:|---:|"]
        for name, f in extra["flood"].items():
            lines.append(f"| {name} | {f['forged_rps']:,.0f} | {f['legit_rps']:,.0f} |")
    if "stalled" in extra:
        s = extra["stalled"]
        lines += ["", f"Stalled connections: {s['connections']} connections announcing 1 MiB frames "
                      f"held the proxy's RSS at {s['rss_during_kib'] / 1024:.1f} MiB (before: "
                      f"{s['rss_before_kib'] / 1024:.1f} MiB); a legitimate client meanwhile: "
                      f"{s['legit_rps_during']:,.0f} RPCs/s."]
    lines += ["", "| target | want | got | |", "|---|---|---:|---|"]
    verdicts = {}
    for label, want, num, den, minimum in TARGETS:
        if num in results and den in results:
            got = results[num]["rps"] / results[den]["rps"]
            verdicts[label] = got >= minimum
            lines.append(f"| {label} | {want} | {got:.2f}x | {'met' if got >= minimum else 'NOT met'} |")
        else:
            lines.append(f"| {label} | {want} | - | skipped |")
    ceilings = {}
    lines += ["", "| what bounds the last target | ratio |", "|---|---:|"]
    for label, num, den in CEILINGS:
        if num in results and den in results:
            ceilings[label] = results[num]["rps"] / results[den]["rps"]
            lines.append(f"| {label} | {ceilings[label]:.2f}x |")
    for what, why in skipped.items():
        lines.append(f"\n{what} skipped: {why}")
    text = "\n".join(lines)
    print(text)
    doc = {"procs": args.procs, "seconds": args.seconds, "rounds": args.rounds,
           "results": results, **extra, "targets": verdicts, "ceilings": ceilings,
           "skipped": skipped}
    write_results(doc, text, args.json, args.markdown)
    if args.png:
        chart(results, args.png)
    return 0


def write_results(doc: Dict[str, Any], text: str, json_path: Optional[str],
                  markdown_path: Optional[str]) -> None:
    """The run's numbers as JSON and its printed tables as markdown, where asked."""
    if json_path:
        with open(json_path, "w") as f:
            json.dump(doc, f, indent=1)
    if markdown_path:
        with open(markdown_path, "w") as f:
            f.write(text + "\n")


def chart(results: Dict[str, Dict[str, Any]], path: str) -> None:
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed: no chart", file=sys.stderr)
        return
    names = list(results)
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(names) + 1.5))
    ax.barh(names[::-1], [results[n]["rps"] for n in names[::-1]], color="#4477aa")
    ax.set_xlabel("RPCs per second (one connection per RPC)")
    ax.set_title("Serving Slurm RPCs on loopback")
    fig.tight_layout()
    fig.savefig(path, dpi=100)


if __name__ == "__main__":
    sys.exit(main())
