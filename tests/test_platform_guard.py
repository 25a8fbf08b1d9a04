"""Unsupported platforms are refused before anything is built: _build.py exits
with the reason on a big-endian host, and csrc/sa_status.h stops any C compile
there with an #error."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_build_script_refuses_a_big_endian_host():
    code = ("import runpy, sys; sys.byteorder = 'big'; "
            f"runpy.run_path({str(ROOT / 'slurmauth_fast' / '_build.py')!r})")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode != 0
    assert "unsupported platform: big-endian host" in r.stderr


@pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed")
def test_c_core_refuses_a_big_endian_host():
    base = ["gcc", "-std=c99", "-fsyntax-only", "-x", "c", str(ROOT / "csrc" / "sa_status.h")]
    assert subprocess.run(base, capture_output=True).returncode == 0
    r = subprocess.run(base[:1] + ["-U__BYTE_ORDER__", "-D__BYTE_ORDER__=__ORDER_BIG_ENDIAN__"] + base[1:],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "big-endian host" in r.stderr, r.stderr
