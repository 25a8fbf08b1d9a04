"""The binary wheel (tools/build-wheel.sh) installs and works where there is no
compiler: a fresh venv gets the wheel and its dependencies (binary only), then
tests/wheel_smoke.py runs with a PATH holding nothing but the venv's python.

The wheel is $SLURMAUTH_WHEEL (`export SLURMAUTH_WHEEL=$(bash tools/build-wheel.sh | tail -n 1)`);
without it the test skips, unless SLURMAUTH_REQUIRE_WHEEL=1 (set by .ci/run), which
makes a missing wheel a failure."""
import os
import re
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
WHEEL = os.environ.get("SLURMAUTH_WHEEL", "")
REQUIRED = os.environ.get("SLURMAUTH_REQUIRE_WHEEL") == "1"

pytestmark = pytest.mark.wheel


def _wheel() -> Path:
    if not WHEEL:
        if REQUIRED:
            pytest.fail("SLURMAUTH_REQUIRE_WHEEL=1 but SLURMAUTH_WHEEL is not set")
        pytest.skip("no wheel: export SLURMAUTH_WHEEL=$(bash tools/build-wheel.sh | tail -n 1)")
    path = Path(WHEEL)
    assert path.is_file(), f"SLURMAUTH_WHEEL={WHEEL} does not exist"
    return path


def test_wheel_name_is_abi3_manylinux():
    name = _wheel().name
    arch = sysconfig.get_platform().split("-", 1)[1].replace("-", "_")
    assert re.fullmatch(r"slurmauth_fast-[^-]+-cp39-abi3-(manylinux[^-]*\.)*manylinux_2_\d+_%s\.whl" % arch,
                        name), name


def test_wheel_installs_and_works_without_a_compiler(tmp_path):
    wheel = _wheel()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # only binary distributions: nothing may be compiled to install it
    subprocess.run([str(py), "-m", "pip", "install", "-q", "--only-binary", ":all:",
                    "--disable-pip-version-check", str(wheel)], check=True, timeout=600)
    # PATH with the venv's bin and nothing else (python, pip): no cc, gcc, ld, make
    env = {"PATH": str(venv / "bin"), "HOME": str(tmp_path), "LANG": "C.UTF-8",
           "CC": "/nonexistent/cc"}
    for tool in ("cc", "gcc", "clang"):
        assert subprocess.run(["/bin/sh", "-c", f"command -v {tool}"], env=env,
                              capture_output=True).returncode != 0
    run = subprocess.run(["python", "-I", str(ROOT / "tests" / "wheel_smoke.py")], env=env,
                         cwd=str(tmp_path), capture_output=True, text=True, timeout=300)
    print(run.stdout, run.stderr)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "wheel smoke: OK" in run.stdout
