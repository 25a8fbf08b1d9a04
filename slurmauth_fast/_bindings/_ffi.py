"""Loads the compiled C core and selects the SHA-256 implementation once,
before any thread can race on it."""
from __future__ import annotations

try:
    from .._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "slurmauth_fast's C core is not built: run `pip install .` "
        "(or `python setup.py build_ext --inplace` in a checkout)"
    ) from exc

lib.sa_sha256_select(lib.SA_SHA256_AUTO)

__all__ = ["ffi", "lib"]
