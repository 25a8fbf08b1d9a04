"""``slurmauth-fast bench``: ``benchmarks/verify_rate.py`` (every peer, the
OpenSSL floor, threads, the socket run; ``--no-compare`` for slurmauth_fast's
own rows only), found beside the package in a source checkout."""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Optional

#: Where a source checkout keeps the benchmark (the package does not ship it).
BENCHMARK = Path(__file__).resolve().parents[2] / "benchmarks" / "verify_rate.py"


def load_benchmark(path: Path = BENCHMARK) -> Optional[ModuleType]:
    """benchmarks/verify_rate.py (of this checkout, or at ``path``) as a module, or None when
    it is not there (an installed package ships no benchmark)."""
    mod = sys.modules.get("verify_rate")
    if mod is not None and getattr(mod, "__file__", None) == str(path):
        return mod
    if not path.is_file():
        return None
    spec = importlib.util.spec_from_file_location("verify_rate", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["verify_rate"] = mod   # dataclasses look their module up by name
    spec.loader.exec_module(mod)
    return mod


def _missing(args: argparse.Namespace) -> int:
    print(f"slurmauth-fast bench: {BENCHMARK} not found (the benchmark lives in the source "
          "checkout, not in the installed package)", file=sys.stderr)
    return 2


def register(subparsers: Any) -> None:
    vr = load_benchmark(BENCHMARK)
    p = subparsers.add_parser(
        "bench", help="measure the verification rate against PyJWT, joserfc, libjwt, munged and "
                      "the OpenSSL HMAC floor (ratios from one run; needs a source checkout)",
        description=vr.__doc__.split("\n\n")[0] if vr is not None and vr.__doc__ else None)
    if vr is None:
        p.set_defaults(func=_missing)
        return
    vr.add_arguments(p, write_files=False)
    p.set_defaults(func=vr.run_from_args)
