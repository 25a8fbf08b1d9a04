"""The benchmark runner works (benchmarks/verify_rate.py):
every contender runs for a tiny duration and the JSON has the expected keys.
No timing is asserted: only that each contender ran and verified the same credential."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from slurmauth_fast.cli.bench import load_benchmark

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# the benchmark of the checkout these tests are in (the package may be an installed wheel)
vr = load_benchmark(Path(ROOT) / "benchmarks" / "verify_rate.py")
assert vr is not None, "benchmarks/verify_rate.py is missing"
TINY = vr.Options(seconds=0.02, rounds=2, batch=8, threads=(1, 2), thread_seconds=0.05,
                  clients=(1,), socket_seconds=0.2)


def _have(module):
    try:
        __import__(module)
        return True
    except ImportError:
        return False


@pytest.fixture(scope="module")
def report():
    return vr.run(TINY)


@pytest.fixture(scope="module")
def doc(report):
    return json.loads(json.dumps(report.to_json()))


def test_json_shape(doc):
    assert set(doc) == {"meta", "rows", "skipped", "threads", "socket", "targets"}
    assert {"token_bytes", "frame_bytes", "key_bytes", "batch", "rounds", "cpus"} <= set(doc["meta"])
    assert 300 <= doc["meta"]["token_bytes"] <= 420  # an RPC credential like Slurm's
    for row in doc["rows"]:
        assert {"name", "group", "unit", "what", "ns_per_op", "median_ns_per_op", "per_second",
                "samples_ns", "vs_pyjwt", "vs_floor"} <= set(row)
        assert len(row["samples_ns"]) == TINY.rounds
        assert row["ns_per_op"] > 0 and row["per_second"] > 0
    assert [t["name"] for t in doc["targets"]] == [
        "verify vs PyJWT", "verify vs libjwt jwt_decode",
        "verify_many per token vs OpenSSL HMAC floor",
        "verify_rpc (whole frame) vs PyJWT (token only)", "create_credential vs libjwt create",
        "verify_many per token vs OpenSSL HMAC floor (multi-buffer)"]


def test_every_contender_ran_or_says_why(doc):
    names = {r["name"] for r in doc["rows"]}
    assert {"slurmauth_fast verify", "slurmauth_fast verify_many", "slurmauth_fast verify_batch",
            "slurmauth_fast create_credential", "slurmauth_fast create_many",
            "slurmauth_fast sc_verify_list (C only)",
            "minimal Python hmac+json"} <= names
    assert "slurmauth_fast verify_rpc" in names
    expected = [vr.BASELINE, "joserfc jwt.decode", vr.FLOOR, "libjwt jwt_decode", vr.LIBJWT_CREATE,
                "munged decode (slurmauth_fast.munge)"]
    for name in expected:
        assert (name in names) != (name in doc["skipped"]), name
    assert (vr.BASELINE in names) == _have("jwt")
    assert ("joserfc jwt.decode" in names) == _have("joserfc")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler")
def test_native_helpers_ran(doc):
    """CI installs gcc, libssl-dev and libjwt-dev: both C helpers must compile and run."""
    names = {r["name"] for r in doc["rows"]}
    if not os.path.exists("/usr/include/openssl/hmac.h"):
        pytest.skip("libssl-dev is not installed")
    assert {vr.FLOOR, "OpenSSL EVP_MAC (dup'd ctx)"} <= names, doc["skipped"]
    if os.path.exists("/usr/include/jwt.h"):
        assert {"libjwt jwt_decode", "libjwt jwt_decode + claims", vr.LIBJWT_CREATE} <= names, \
            doc["skipped"]


def test_threads_and_sockets(doc):
    assert [(t["api"], t["threads"]) for t in doc["threads"]] == [
        ("verify_many", 1), ("verify_many", 2), ("verify_batch", 1), ("verify_batch", 2),
        ("verify", 1), ("verify", 2), ("sc_verify_list (C only)", 1), ("sc_verify_list (C only)", 2),
        ("reference: hashlib.sha256(1 MiB)", 1), ("reference: hashlib.sha256(1 MiB)", 2)]
    assert all(t["per_second"] > 0 for t in doc["threads"])
    assert [s["clients"] for s in doc["socket"]] == [1], doc["skipped"]
    assert doc["socket"][0]["requests"] > 0


def test_table_names_every_row(report):
    text = vr.format_report(report)
    for r in report.rows:
        assert r.name in text
    assert "targets" in text


@pytest.mark.skipif(shutil.which("cc") is None or not os.path.exists("/usr/include/openssl/hmac.h"),
                    reason="needs a C compiler and libssl-dev")
def test_floor_helper_refuses_a_wrong_tag(tmp_path):
    """The C floor checks the tag it computes: a wrong expectation fails the run
    instead of timing some other work."""
    inp = vr.make_inputs(64)
    c = vr.native_peers(inp, str(tmp_path))[0][0]
    assert set(c.measure(0.01)) == {vr.FLOOR, "OpenSSL EVP_MAC (dup'd ctx)"}
    c.args[2] = "00" * 32
    with pytest.raises(RuntimeError, match="tag mismatch"):
        c.measure(0.01)


@pytest.mark.skipif(not os.path.exists("/usr/include/jwt.h") or shutil.which("cc") is None,
                    reason="needs a C compiler and libjwt-dev")
def test_libjwt_helper_refuses_a_forged_token(tmp_path):
    inp = vr.make_inputs(64)
    c = vr.native_peers(inp, str(tmp_path))[0][1]
    assert set(c.measure(0.01)) == {"libjwt jwt_decode", "libjwt jwt_decode + claims"}
    with open(c.args[1], "wb") as f:
        f.write(inp.token[:-2] + (b"AA" if not inp.token.endswith(b"AA") else b"BB"))
    with pytest.raises(RuntimeError, match="refused"):
        c.measure(0.01)


def test_script_writes_json_and_chart(tmp_path):
    out, png = tmp_path / "r.json", tmp_path / "r.png"
    res = subprocess.run(
        [sys.executable, os.path.join(ROOT, "benchmarks", "verify_rate.py"), "--seconds", "0.01",
         "--rounds", "1", "--batch", "4", "--threads", "1", "--thread-seconds", "0.02",
         "--clients", "0", "--no-native", "--no-munge", "-q", "--json", str(out), "--png", str(png),
         "--markdown", str(tmp_path / "r.md")],
        capture_output=True, text=True, timeout=120,
        # the package this test imported, whether installed or built in place
        env={**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(vr.__file__))})
    assert res.returncode == 0, res.stderr
    assert "slurmauth_fast verify" in res.stdout
    doc = json.loads(out.read_text())
    assert doc["rows"] and doc["threads"] and doc["socket"] == []
    assert "| slurmauth_fast verify |" in (tmp_path / "r.md").read_text()
    if _have("matplotlib"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:
        assert "chart: skipped" in res.stdout and not png.exists()


def test_munged_row_with_a_private_munged():
    """The munged contender against a real private munged (tests/munged.py)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from munged import MungedDaemon, skip_unless_munge
    skip_unless_munge()
    inp = vr.make_inputs(64)
    with MungedDaemon() as daemon:
        contenders, skipped = vr.munge_peer(inp, daemon.socket)
        assert not skipped and len(contenders) == 1
        got = contenders[0].measure(0.02)
    assert list(got) == ["munged decode (slurmauth_fast.munge)"] and got[next(iter(got))] > 0


def test_munged_unreachable_is_skipped_with_the_reason(tmp_path):
    contenders, skipped = vr.munge_peer(vr.make_inputs(64), str(tmp_path / "no.socket"))
    assert contenders == [] and "not reachable" in skipped["munged decode (slurmauth_fast.munge)"]


def test_socket_run_over_a_unix_socket(tmp_path):
    inp = vr.make_inputs(64)
    results, why = vr.socket_run(inp, (2,), 0.2, str(tmp_path), transport="unix")
    assert why is None and results[0].clients == 2 and results[0].requests > 0


def test_socket_run_reports_a_refused_frame(tmp_path):
    """A frame the shim refuses (bad signature) ends the run with the reason,
    instead of hanging or counting it."""
    inp = vr.make_inputs(64)
    bad = vr.make_inputs(64)          # another key: the shim answers rc 1007
    inp.frame = bad.frame
    results, why = vr.socket_run(inp, (1,), 0.2, str(tmp_path))
    assert results == [] and "client failed" in why and "rc 1007" in why


@pytest.mark.skipif(not os.path.exists("/usr/include/jwt.h") or shutil.which("cc") is None,
                    reason="needs a C compiler and libjwt-dev")
def test_libjwt_create_helper_checks_the_bytes(tmp_path):
    """The libjwt create helper times only when libjwt writes our very token."""
    inp = vr.make_inputs(64)
    c = vr.native_peers(inp, str(tmp_path))[0][2]
    assert set(c.measure(0.01)) == {vr.LIBJWT_CREATE}
    with open(c.args[1], "rb") as f:
        tok = f.read()
    with open(c.args[1], "wb") as f:
        f.write(tok[:-2] + (b"AA" if not tok.endswith(b"AA") else b"BB"))
    with pytest.raises(RuntimeError, match="another token"):
        c.measure(0.01)
