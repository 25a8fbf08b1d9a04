"""Loads the compiled C core and selects the SHA-256 implementations (the
single-stream one and verify_many's multi-buffer one) and the claims
scanner's once, before any thread can race on them."""
from __future__ import annotations

try:
    from .._native import ffi, lib
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "slurmauth_fast's C core is not built: run `pip install .` "
        "(or `python setup.py build_ext --inplace` in a checkout)"
    ) from exc

lib.sa_sha256_select(lib.SA_SHA256_AUTO)
lib.sa_mb_select(lib.SA_MB_AUTO)   # verify_many's HMAC: measured once, here, before any thread
lib.sc_scan_select(lib.SC_SCAN_AUTO)

__all__ = ["ffi", "lib"]
