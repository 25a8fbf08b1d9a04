"""benchmarks/bench_sack.py runs and counts right (briefly, without Slurm's sackd:
its rows are skipped with the reason; the real_slurm suite covers sackd itself)."""
import importlib.util
import json
import os
import shutil
from pathlib import Path

import pytest

from slurmauth_fast import sack
from slurmauth_fast.keys import Keyring
from slurmauth_fast.tokens import create_credential

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def bench():
    if shutil.which(os.environ.get("CC", "cc")) is None:
        pytest.skip("no C compiler")
    spec = importlib.util.spec_from_file_location("bench_sack", ROOT / "benchmarks" / "bench_sack.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rows_targets_and_json(bench, tmp_path):
    out = tmp_path / "r.json"
    assert bench.main(["--no-slurm", "--seconds", "0.2", "--rounds", "1", "--clients", "2",
                       "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["skipped"] == {"Slurm sackd rows": "--no-slurm"}
    assert doc["targets"] == {}       # no sackd row: no ratio claimed
    for kind in ("create", "verify"):
        for clients in ("1", "2"):
            ours = doc["results"][kind][clients][bench.OURS]
            assert ours["rps"] > 0 and ours["failed"] == 0 and len(ours["rounds"]) == 1
    assert doc["results"]["create"]["1"][bench.FIXED]["failed"] == 0
    assert bench.SACKD not in doc["results"]["create"]["1"]


def test_c_client_counts_refusals_as_failed(bench, tmp_path):
    """The kiosk closes without a reply on a token it refuses: not a round trip counted."""
    exes = bench.compile_native(str(tmp_path))
    ring = Keyring.from_key_bytes(os.urandom(32))
    forged = create_credential(Keyring.from_key_bytes(os.urandom(32)), uid=0, gid=0,
                               context="sack", ruid=0xFFFFFFFF)
    req = tmp_path / "forged.req"
    req.write_bytes(sack.encode_verify_request(forged))
    import threading
    server = sack.SackServer(ring, socket_path=str(tmp_path / "k.socket"))
    server.bind()
    t = threading.Thread(target=server.serve_forever, daemon=True)
    t.start()
    try:
        r = bench.c_client(exes["loadgen"], str(req), server.path, 1, 0.2)
    finally:
        server.stop()
        t.join(30)
        server.close()
    assert r["ok"] == 0 and r["rps"] == 0 and r["failed"] > 0
