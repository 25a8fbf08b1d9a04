"""The auth/jwt fuzz harness runs its seed corpus cleanly (CI runs it for real
in fuzz/run.sh): fuzz/fuzz_authjwt.c under ASan+UBSan through a tiny
LLVMFuzzerTestOneInput driver, every prefix of every seed included."""
import shutil
import subprocess
from pathlib import Path

import pytest

from test_fuzz_sack_harnesses import DRIVER

ROOT = Path(__file__).resolve().parent.parent
SEEDS = sorted((ROOT / "fuzz/corpus/fuzz_authjwt").iterdir())


@pytest.mark.skipif(not shutil.which("clang"), reason="needs clang with ASan/UBSan")
def test_c_harness_runs_seeds_and_prefixes_under_sanitizers(tmp_path):
    drv = tmp_path / "drv.c"
    drv.write_text(DRIVER)
    exe = tmp_path / "fuzz_authjwt"
    srcs = sorted(str(p) for p in (ROOT / "csrc").glob("*.c"))
    build = subprocess.run(["clang", "-std=c99", "-D_DEFAULT_SOURCE", "-g", "-O1",
                            "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                            f"-I{ROOT / 'csrc'}", f"-I{ROOT / 'fuzz'}", str(ROOT / "fuzz/fuzz_authjwt.c"),
                            str(drv), *srcs, "-o", str(exe)], capture_output=True, text=True)
    if build.returncode and "cannot find" in build.stderr and "clang_rt" in build.stderr:
        pytest.skip("clang sanitizer runtime missing (Debian package libclang-rt-14-dev)")
    assert build.returncode == 0, build.stderr
    assert len(SEEDS) >= 8
    r = subprocess.run([str(exe), *map(str, SEEDS)], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
