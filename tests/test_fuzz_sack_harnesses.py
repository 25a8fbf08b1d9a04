"""The SACK fuzz harnesses run their seed corpora cleanly (CI runs them for
real in fuzz/run.sh): fuzz/fuzz_sack.c under ASan+UBSan through a tiny
LLVMFuzzerTestOneInput driver, and fuzz/py_fuzz_sack.py's test_one_input
in-process, which also has to catch a kiosk reader that reads past a request."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SEEDS_C = sorted((ROOT / "fuzz/corpus/fuzz_sack").iterdir())
SEEDS_PY = sorted((ROOT / "fuzz/corpus/py_sack").iterdir())

DRIVER = r"""
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int main(int argc, char **argv)
{
    static uint8_t buf[1 << 20];
    int i;
    for (i = 1; i < argc; i++) {
        FILE *f = fopen(argv[i], "rb");
        size_t n, k;
        if (!f)
            return 2;
        n = fread(buf, 1, sizeof(buf), f);
        fclose(f);
        for (k = 0; k <= n; k++)          /* every prefix: a client that stops early */
            LLVMFuzzerTestOneInput(buf, k);
    }
    return 0;
}
"""


@pytest.mark.skipif(not shutil.which("clang"), reason="needs clang with ASan/UBSan")
def test_c_harness_runs_seeds_and_prefixes_under_sanitizers(tmp_path):
    drv = tmp_path / "drv.c"
    drv.write_text(DRIVER)
    exe = tmp_path / "fuzz_sack"
    srcs = sorted(str(p) for p in (ROOT / "csrc").glob("*.c"))
    subprocess.run(["clang", "-std=c99", "-D_DEFAULT_SOURCE", "-g", "-O1", "-fsanitize=address,undefined",
                    "-fno-sanitize-recover=all", f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'fuzz'}",
                    str(ROOT / "fuzz/fuzz_sack.c"), str(drv), *srcs, "-o", str(exe)], check=True)
    r = subprocess.run([str(exe), *map(str, SEEDS_C)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]


def _harness():
    pytest.importorskip("atheris")
    sys.path.insert(0, str(ROOT / "fuzz"))
    try:
        import py_fuzz_sack
    finally:
        sys.path.pop(0)
    return py_fuzz_sack


def test_py_harness_runs_seeds():
    h = _harness()
    assert SEEDS_PY
    for seed in SEEDS_PY:
        data = seed.read_bytes()
        h.test_one_input(data)
        for cut in (1, 5, 11, len(data) // 2, len(data) - 1):   # truncated streams too
            h.test_one_input(data[:cut])


def test_py_harness_catches_a_reader_that_reads_past_the_request(monkeypatch):
    h = _harness()
    from slurmauth_fast import sack
    orig = sack.SackServer._read

    def greedy(self, conn):
        if conn.need > sack.HEADER_LEN:
            conn.need += 2                     # wants two bytes of the next request
        return orig(self, conn)

    monkeypatch.setattr(sack.SackServer, "_read", greedy)
    with pytest.raises(AssertionError, match="past the"):
        h.test_one_input((ROOT / "fuzz/corpus/py_sack/verify_then_more").read_bytes())
