"""Front end at wire speed: the C serving core against the loopback limit.

Compiles ``benchmarks/native/loadgen.c`` and ``fixed_reply_server.c`` on the
fly (cc -O2), then runs the load generator (``--procs`` processes, one
connection per RPC as Slurm clients do, ``--seconds`` each) against:

* ``fixed``: the single-threaded C epoll server answering every frame with
  fixed bytes (no verification): the loopback limit;
* ``core``: the serving core (``_bindings.serve.ServeCore``) driven from a
  Python loop in another process, answering each verified REQUEST_PING with
  RESPONSE_SLURM_RC rc 0 (one Python round trip per request);
* ``forged``: the same core fed frames whose credential is signed with
  another key: refused and answered (rc 1007) inside C, never reaching Python;
* ``proxy``: the core relaying every verified frame to the fixed-reply server
  (``forward`` with the client's own source address) and the reply back:
  two connections per RPC, the upstream's work included;
* ``shim``: today's asyncio shim (``slurmauth-fast shim``), for comparison
  (``--no-shim`` skips it).

Servers are measured in interleaved rounds and the best round counts (the
machine is shared). Prints one row per server and a JSON line with everything.

    python benchmarks/bench_serve.py [--procs 4] [--seconds 2] [--rounds 3]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.join(HERE, "native")

CORE_SERVER = r"""
import os, sys
from slurmauth_fast import keys, tokens
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast.rpc import RESPONSE_SLURM_RC, pack_frame
from slurmauth_fast._bindings.serve import ServeCore, EV_VERIFIED
from slurmauth_fast._bindings._ffi import lib
kr = keys.Keyring.from_key_bytes(bytes.fromhex(sys.argv[1]))
core = ServeCore(max_per_ip=0, max_conns=16384, defer_accept_s=int(sys.argv[2]),
                 report_forward_done=0)
upstream = core.address("127.0.0.1", int(sys.argv[3])) if len(sys.argv) > 3 else None
core.set_keys(*FrameVerifier(tokens.Verifier(kr)).c_state())
print("port", core.listen_tcp("127.0.0.1", 0), flush=True)
ok = pack_frame(RESPONSE_SLURM_RC, b"\0\0\0\0", flags=0x0044)
srv, evs = core._srv, core.raw_events
reply, close, poll = lib.sa_serve_reply, lib.sa_serve_close, lib.sa_serve_poll
n_ok = len(ok)
while True:
    n = poll(srv, 1000, evs, 256)
    for k in range(n):
        e = evs[k]
        if e.kind == EV_VERIFIED and upstream:
            core.forward(e.conn_id, upstream, bind_peer=True)
        elif e.kind == EV_VERIFIED:
            reply(srv, e.conn_id, ok, n_ok, 1)
        else:
            close(srv, e.conn_id)
"""


def compile_native(out_dir: str) -> dict:
    cc = os.environ.get("CC", "cc")
    if shutil.which(cc) is None:
        raise SystemExit(f"no C compiler ({cc}) on PATH")
    exes = {}
    for name in ("loadgen", "fixed_reply_server"):
        exe = os.path.join(out_dir, name)
        subprocess.run([cc, "-std=c99", "-O2", os.path.join(NATIVE, name + ".c"), "-o", exe],
                       check=True)
        exes[name] = exe
    return exes


def start(cmd: list, env=None) -> tuple:
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    line = p.stdout.readline().split()
    if not line:
        p.kill()
        raise RuntimeError(f"{cmd[0]} did not start")
    return p, line


def loadgen(exe: str, frame_path: str, target: list, procs: int, seconds: float,
            expect_rc: int) -> dict:
    out = subprocess.run([exe, "--frame", frame_path, *target, "--procs", str(procs),
                          "--seconds", str(seconds), "--expect-rc", str(expect_rc)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-shim", action="store_true")
    ap.add_argument("--defer-accept", type=int, default=0,
                    help="TCP_DEFER_ACCEPT seconds on the core's listener (0 = off)")
    args = ap.parse_args(argv)

    from slurmauth_fast import keys, tokens
    from slurmauth_fast.rpc import REQUEST_PING, body_hash_payload, pack_frame

    key = os.urandom(1024)
    kr = keys.Keyring.from_key_bytes(key)
    other = keys.Keyring.from_key_bytes(os.urandom(1024))
    claims = dict(uid=1000, gid=1000, host="login01", cluster="cluster1", ruid=os.getuid(),
                  payload=body_hash_payload(b"", REQUEST_PING), ttl=3600)

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        exes = compile_native(tmp)
        good = os.path.join(tmp, "ping.frame")
        forged = os.path.join(tmp, "forged.frame")
        with open(good, "wb") as f:
            f.write(pack_frame(REQUEST_PING, b"", credential=tokens.create_credential(kr, **claims)))
        with open(forged, "wb") as f:
            f.write(pack_frame(REQUEST_PING, b"",
                               credential=tokens.create_credential(other, **claims)))

        procs = []
        try:
            p, line = start([exes["fixed_reply_server"]])
            procs.append(p)
            fixed_port = line[1]
            p, line = start([sys.executable, "-c", CORE_SERVER, key.hex(), str(args.defer_accept)])
            procs.append(p)
            core_port = line[1]
            p, line = start([sys.executable, "-c", CORE_SERVER, key.hex(), str(args.defer_accept),
                             fixed_port])
            procs.append(p)
            targets = {"fixed": (fixed_port, good, 0), "core": (core_port, good, 0),
                       "forged": (core_port, forged, 1007), "proxy": (line[1], good, 0)}
            if not args.no_shim:
                keyfile = os.path.join(tmp, "slurm.key")
                with open(keyfile, "wb") as f:
                    f.write(key)
                os.chmod(keyfile, 0o600)
                p = subprocess.Popen([sys.executable, "-m", "slurmauth_fast.cli", "shim",
                                      "--listen", "127.0.0.1:0", "--key", keyfile],
                                     stdout=subprocess.PIPE, text=True)
                procs.append(p)
                line = p.stdout.readline().strip()
                if line.startswith("listening"):
                    targets["shim"] = (line.rsplit(":", 1)[1], good, 0)
            time.sleep(0.3)
            # interleaved rounds, best round per server: a burst of load from
            # other processes on the machine hurts every server alike
            for _ in range(args.rounds):
                for name, (port, frame, rc) in targets.items():
                    r = loadgen(exes["loadgen"], frame, ["--tcp", f"127.0.0.1:{port}"],
                                args.procs, args.seconds, rc)
                    r["rounds"] = results.get(name, {}).get("rounds", []) + [round(r["rps"])]
                    if name not in results or r["rps"] > results[name]["rps"]:
                        results[name] = r
                    else:
                        results[name]["rounds"] = r["rounds"]
        finally:
            for p in procs:
                p.terminate()
                p.wait(5)

    base = results["fixed"]["rps"]
    print(f"{'server':8} {'RPCs/s':>10} {'x fixed':>8} {'ok':>9} {'closed':>8} {'errors':>7} "
          f"{'rc!':>5}  rounds")
    for name, r in results.items():
        print(f"{name:8} {r['rps']:10.0f} {r['rps'] / base:8.2f} {r['ok']:9} {r['closed']:8} "
              f"{r['errors']:7} {r['rc_mismatch']:5}  {r['rounds']}")
    print(json.dumps({"procs": args.procs, "seconds": args.seconds, "results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
