"""cffi build script for the C core (``slurmauth_fast._native``).

The C units compiled into the production extension are listed here
(:data:`UNITS`, each ``csrc/<unit>.c`` with its ``csrc/<unit>.h``, plus the
status header): a new C unit is added to the list, and test-only code
(``csrc/fuzz.c``, which holds a fixed key) is never compiled in. Each header
carries the declarations Python may call between the markers
``/* cffi:begin */`` and ``/* cffi:end */``; they are concatenated into the
cdef in name order. The declarations there must be plain enough for cffi's
parser (no macros other than integer ``#define``s, no attributes).
"""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import sysconfig
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


#: The production C units (csrc/<unit>.c and csrc/<unit>.h).
UNITS = ("base64", "bodyhash", "create", "hmac", "jws", "jwtverify", "k12", "keccak", "pack",
         "ratelimit", "rpc", "sack_serve", "serve", "serve_conn", "serve_frame", "serve_upstream",
         "sha256", "sha256_mb", "sha3", "slurmcred", "verify_frame")
#: Headers without a .c file of their own (pyitems.h is compiled here only: it needs Python.h).
HEADERS_ONLY = ("pyitems", "sa_status")


def _headers() -> list[Path]:
    return sorted(CSRC / f"{name}.h" for name in UNITS + HEADERS_ONLY)


def _cdef() -> str:
    parts = []
    for h in _headers():
        for block in _BLOCK.findall(h.read_text()):
            parts.append(f"/* {h.name} */\n{block}")
    return "\n".join(parts)


def _lto_args() -> list[str]:
    """``-flto=auto -fno-semantic-interposition`` when the C compiler is gcc,
    else nothing. The units call
    each other on verify_many's hot path (a MAC step: hmac.c into sha256.c;
    the claims decode: slurmcred.c through jws.c into base64.c; the tag check)
    and gcc inlines across them only with link-time optimisation: 17 ns of a
    ~300 ns token in the C harness. Other compilers (clang needs a linker
    plugin for it) build without it; the code is the same either way."""
    cc = shlex.split(os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc")
    if not cc:
        return []
    try:
        out = subprocess.run([cc[0], "--version"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    if "Free Software Foundation" not in out or "clang" in out:
        return []
    # the units' exported functions may be inlined into each other (nothing
    # interposes them: the extension is loaded by Python, which calls only
    # its init function); without this every call still goes through the PLT
    return ["-flto=auto", "-fno-semantic-interposition"]


def _sources() -> list[str]:
    # Paths relative to the project root, as setuptools wants them.
    return [os.path.relpath(CSRC / f"{name}.c", ROOT) for name in UNITS]


_LTO = _lto_args()
ffibuilder = FFI()
ffibuilder.cdef(_cdef())
ffibuilder.set_source(
    "slurmauth_fast._native",
    "\n".join(f'#include "{h.name}"' for h in _headers()),
    sources=_sources(),
    include_dirs=[os.path.relpath(CSRC, ROOT)],
    extra_compile_args=["-std=c99", "-O3", "-fno-strict-aliasing", "-D_DEFAULT_SOURCE"] + _LTO,
    extra_link_args=["-O3"] + _LTO,
    # One abi3 extension for every CPython >= 3.9 (setup.py tags the wheel cp39-abi3).
    py_limited_api=True,
    define_macros=[("Py_LIMITED_API", "0x03090000")],
)

if __name__ == "__main__":  # pragma: no cover - developer convenience
    os.chdir(ROOT)
    ffibuilder.compile(verbose=True)
