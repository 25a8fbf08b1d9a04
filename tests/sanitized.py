"""C programs built with the whole C core under AddressSanitizer and UBSan,
for the tests that drive csrc/ from a harness of their own."""
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def build(src: Path, exe: Path) -> Path:
    """Compile ``src`` with every csrc/*.c (-O1 -g, ASan + UBSan, no recovery)
    into ``exe``. The test is skipped without a C compiler or when the
    sanitizer runtimes cannot be found; any other compile error fails it."""
    cc = shutil.which("gcc") or shutil.which("clang")
    if cc is None:
        pytest.skip("no C compiler")
    cmd = [cc, "-std=c99", "-D_DEFAULT_SOURCE", "-O1", "-g", "-fno-omit-frame-pointer",
           "-fsanitize=address,undefined", "-fno-sanitize-recover=all", f"-I{ROOT / 'csrc'}",
           str(src), *map(str, sorted((ROOT / "csrc").glob("*.c"))), "-o", str(exe)]
    built = subprocess.run(cmd, capture_output=True, text=True)
    if built.returncode and "sanitize" in built.stderr and "cannot find" in built.stderr:
        pytest.skip(f"the sanitizer runtimes (libasan/libubsan) are not installed: {built.stderr[-300:]}")
    assert built.returncode == 0, built.stderr
    return exe
