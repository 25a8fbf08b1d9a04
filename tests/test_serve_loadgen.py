"""The benchmark's native tools (benchmarks/native): the load generator against
the fixed-reply server and against the serving core, briefly (they are the
instruments behind bench_serve.py's numbers, so they must count right)."""
import contextlib
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from slurmauth_fast import keys, tokens
from slurmauth_fast.frame_verifier import FrameVerifier
from slurmauth_fast._bindings import serve as S
from slurmauth_fast.rpc import REQUEST_PING, RESPONSE_SLURM_RC, body_hash_payload, pack_frame

ROOT = Path(__file__).resolve().parent.parent
NATIVE = ROOT / "benchmarks" / "native"
KEY = b"loadgen test key, 32 bytes long!"


@pytest.fixture(scope="module")
def exes(tmp_path_factory):
    cc = shutil.which(os.environ.get("CC", "cc"))
    if cc is None:
        pytest.skip("no C compiler")
    out = tmp_path_factory.mktemp("native")
    made = {}
    for name in ("loadgen", "fixed_reply_server", "bare_relay"):
        exe = out / name
        subprocess.run([cc, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic",
                        str(NATIVE / f"{name}.c"), "-o", str(exe)], check=True)
        made[name] = str(exe)
    return made


def frame_file(tmp_path, ring, name="ping"):
    cred = tokens.create_credential(ring, uid=1, gid=1, host="h", ruid=os.getuid(),
                                    payload=body_hash_payload(b"", REQUEST_PING))
    p = tmp_path / name
    p.write_bytes(pack_frame(REQUEST_PING, b"", credential=cred))
    return str(p)


def run_loadgen(exe, *args):
    out = subprocess.run([exe, *args], check=True, capture_output=True, text=True, timeout=30)
    return json.loads(out.stdout)


def test_loadgen_against_the_fixed_reply_server(exes, tmp_path):
    ring = keys.Keyring.from_key_bytes(KEY)
    frame = frame_file(tmp_path, ring)
    for extra in ([], ["--keep"]):
        srv = subprocess.Popen([exes["fixed_reply_server"], *extra], stdout=subprocess.PIPE,
                               text=True)
        try:
            port = srv.stdout.readline().split()[1]
            args = ["--frame", frame, "--tcp", f"127.0.0.1:{port}", "--procs", "2",
                    "--seconds", "0.5", "--expect-rc", "0"]
            r = run_loadgen(exes["loadgen"], *args, *(["--persistent"] if extra else []))
            assert r["ok"] > 50 and r["errors"] == 0 and r["closed"] == 0
            assert r["rc_mismatch"] == 0 and r["procs"] == 2
            assert r["rps"] == pytest.approx((r["ok"] + r["closed"]) / r["seconds"], rel=1e-3)
            r = run_loadgen(exes["loadgen"], *args[:-1], "1007")
            assert r["rc_mismatch"] == r["ok"] > 0       # the fixed reply carries rc 0
        finally:
            srv.terminate()
            srv.wait(5)


@contextlib.contextmanager
def answering_core(ring, unix_path=None):
    """A serving core verifying with ``ring`` on a thread of its own, answering every verified
    frame rc 0 and recording its peer's IP ("unix" for a unix-socket client): yields (core,
    TCP port, peers). The thread has stopped when the block ends; the caller frees the core."""
    core = S.ServeCore(max_per_ip=0)
    core.set_keys(*FrameVerifier(tokens.Verifier(ring)).c_state())
    port = core.listen_tcp()
    if unix_path is not None:
        core.listen_unix(unix_path)
    ok = pack_frame(RESPONSE_SLURM_RC, b"\0\0\0\0", flags=0x0044)
    peers = set()
    stop = []

    def loop():
        while not stop:
            for ev in core.poll(50):
                if ev.kind == S.EV_VERIFIED:
                    peers.add(ev.peer[0] if ev.peer else "unix")
                    core.reply(ev.conn_id, ok)
    t = threading.Thread(target=loop)
    t.start()
    try:
        yield core, port, peers
    finally:
        stop.append(1)
        core.wakeup()
        t.join(5)


def test_loadgen_against_the_serving_core(exes, tmp_path):
    ring = keys.Keyring.from_key_bytes(KEY)
    good = frame_file(tmp_path, ring)
    forged = frame_file(tmp_path, keys.Keyring.from_key_bytes(b"f" * 32), "forged")
    path = str(tmp_path / "core.sock")
    with answering_core(ring, path) as (core, port, peers):
        base = ["--procs", "2", "--seconds", "0.5"]
        r = run_loadgen(exes["loadgen"], "--frame", good, "--tcp", f"127.0.0.1:{port}",
                        "--bind", "127.0.0.5", "--expect-rc", "0", *base)
        assert r["ok"] > 20 and r["errors"] == 0 and r["rc_mismatch"] == 0
        assert peers == {"127.0.0.5"}
        r = run_loadgen(exes["loadgen"], "--frame", good, "--unix", path, "--expect-rc", "0",
                        *base)
        assert r["ok"] > 20 and r["errors"] == 0 and "unix" in peers
        r = run_loadgen(exes["loadgen"], "--frame", forged, "--tcp", f"127.0.0.1:{port}",
                        "--expect-rc", "1007", *base)
        assert r["ok"] > 20 and r["rc_mismatch"] == 0 and r["errors"] == 0
    st = core.stats()
    assert st["refused_answered"] == r["ok"] and st["frames_refused"] == r["ok"]
    core.free()


def test_bare_relay_relays_from_the_clients_address(exes, tmp_path):
    """The relay behind the benchmark's ceiling rows relays every frame and its reply, on an
    upstream connection from the client's own IP (as the proxy does)."""
    ring = keys.Keyring.from_key_bytes(KEY)
    good = frame_file(tmp_path, ring)
    with answering_core(ring) as (core, port, peers):
        relay = subprocess.Popen([exes["bare_relay"], "--upstream", f"127.0.0.1:{port}"],
                                 stdout=subprocess.PIPE, text=True)
        try:
            relay_port = relay.stdout.readline().split()[1]
            r = run_loadgen(exes["loadgen"], "--frame", good, "--tcp", f"127.0.0.1:{relay_port}",
                            "--bind", "127.0.0.6", "--expect-rc", "0", "--procs", "2",
                            "--seconds", "0.5")
        finally:
            relay.terminate()
            relay.wait(5)
    assert r["ok"] > 20 and r["errors"] == 0 and r["rc_mismatch"] == 0 and r["closed"] == 0
    assert peers == {"127.0.0.6"}
    assert r["ok"] <= core.stats()["frames_verified"] <= r["ok"] + 2   # (one in flight per process at the end)
    core.free()


def test_bench_serve_runs(tmp_path):
    """The serving benchmark runs end to end (the slurmctld rows belong to the real_slurm
    suite's machines; here they are skipped): every row answered, the JSON complete."""
    out_json = tmp_path / "serve.json"
    out = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_serve.py"),
                          "--seconds", "0.3", "--rounds", "1", "--procs", "2", "--no-slurm",
                          "--stalled", "20", "--json", str(out_json)],
                         capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-2000:]
    doc = json.loads(out_json.read_text())
    res = doc["results"]
    assert set(res) == {"fixed", "shim", "proxy -> fixed", "proxy, forged", "bare relay -> fixed",
                        "shim, use_client_ids", "proxy -> fixed, use_client_ids"}
    for name, r in res.items():
        assert r["ok"] > 0 and r["errors"] == 0 and r["rc_mismatch"] == 0, (name, r)
    assert doc["flood"]["proxy -> fixed"]["legit_rps"] > 0
    assert doc["stalled"]["connections"] == 20 and doc["stalled"]["legit_rps_during"] > 0
    assert doc["skipped"] == {"slurmctld rows": "--no-slurm"}
    assert "shim vs fixed-reply server" in out.stdout
    assert set(doc["ceilings"]) == {"proxy vs bare relay, both in front of the fixed server"}
