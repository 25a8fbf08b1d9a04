"""cffi build script for the C core (``slurmauth_fast._native``).

Every ``csrc/*.c`` file is compiled into one extension. Each public header in
``csrc/`` carries the declarations Python may call between the markers
``/* cffi:begin */`` and ``/* cffi:end */``; they are concatenated into the cdef,
so a new C unit is exposed by writing its header, not by editing this file.
The declarations there must be plain enough for cffi's parser (no macros
other than integer ``#define``s, no attributes).
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CSRC = ROOT / "csrc"

# The C core assumes a little-endian host (csrc/sa_status.h has the same
# check as an #error); refuse here, before any compiling, with the reason.
if sys.byteorder != "little":
    raise SystemExit(
        f"slurmauth_fast: unsupported platform: {sys.byteorder}-endian host. The C core "
        "is written and tested for little-endian x86-64 and aarch64 only."
    )

_BLOCK = re.compile(r"/\* cffi:begin \*/(.*?)/\* cffi:end \*/", re.S)


def _headers() -> list[Path]:
    return sorted(CSRC.glob("*.h"))


def _cdef() -> str:
    parts = []
    for h in _headers():
        for block in _BLOCK.findall(h.read_text()):
            parts.append(f"/* {h.name} */\n{block}")
    return "\n".join(parts)


def _sources() -> list[str]:
    # Paths relative to the project root, as setuptools wants them.
    return [os.path.relpath(p, ROOT) for p in sorted(CSRC.glob("*.c"))]


ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "slurmauth_fast._native",
    "\n".join(f'#include "{h.name}"' for h in _headers()),
    sources=_sources(),
    include_dirs=[os.path.relpath(CSRC, ROOT)],
    extra_compile_args=["-std=c99", "-O3", "-fno-strict-aliasing", "-D_DEFAULT_SOURCE"],
    # One abi3 extension for every CPython >= 3.9 (setup.py tags the wheel cp39-abi3).
    py_limited_api=True,
    define_macros=[("Py_LIMITED_API", "0x03090000")],
)

if __name__ == "__main__":  # pragma: no cover - developer convenience
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
