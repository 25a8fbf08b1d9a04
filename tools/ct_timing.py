#!/usr/bin/env python3
"""Statistical constant-time check of the tag comparison on the SHA-NI path.

valgrind (tools/ct_check.sh) cannot run SHA-NI instructions, so that check
covers the portable SHA-256 only. This one times the real thing, dudect-style:
fuzz/ct/ct_timing.c verifies forged tokens whose tag differs from the right
one in its FIRST byte (class 0) or its LAST byte (class 1), the classes
interleaved at random, each call timed alone with rdtsc; Welch's t-test then
compares the two timing distributions, on all samples and on the samples
below several percentiles (cropping the long tail of interrupts, as dudect
does). |t| >= 4.5 in any of them is a leak.

Targets: ``verify`` (sc_verify, the whole auth/slurm verifier), ``check``
(sa_jws_hs256_check, the tag check alone) and ``leaky``, the positive control:
the same HMAC followed by an early-exit byte comparison, which must be
flagged, else the run could not have seen a leak and proves nothing.

    python tools/ct_timing.py                       # 1,000,000 samples per target, SHA-NI
    python tools/ct_timing.py --samples 200000 --impl portable --json build/ct/timing.json

Exit status: 0 when no real target leaks and the control is flagged; 1 when a
real target is flagged; 2 when the control is not flagged (inconclusive);
77 when the SHA-256 implementation asked for is not available on this CPU.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parent.parent
DRIVER = ROOT / "fuzz" / "ct" / "ct_timing.c"
THRESHOLD = 4.5
CROPS = (50.0, 75.0, 90.0, 95.0, 99.0)
TARGETS = {"verify": "real", "check": "real", "leaky": "control"}


def build(out_dir: Path, cc: str, rebuild: bool = False) -> Path:
    sources = sorted((ROOT / "csrc").glob("*.c"))
    binary = out_dir / f"ct_timing-{cc}"
    newest = max(p.stat().st_mtime for p in sources + [DRIVER] + sorted((ROOT / "csrc").glob("*.h")))
    if rebuild or not binary.exists() or binary.stat().st_mtime < newest:
        out_dir.mkdir(parents=True, exist_ok=True)
        subprocess.run([cc, "-std=c99", "-D_DEFAULT_SOURCE", "-O2", "-I", str(ROOT / "csrc"),
                        str(DRIVER), *map(str, sources), "-o", str(binary)], check=True)
    return binary


def welch_t(a: Sequence[int], b: Sequence[int]) -> float:
    """Welch's t statistic of two samples (0 when both are constant and equal)."""
    na, nb = len(a), len(b)
    if na < 2 or nb < 2:
        return 0.0
    ma, mb = sum(a) / na, sum(b) / nb
    va = sum((x - ma) ** 2 for x in a) / (na - 1)
    vb = sum((x - mb) ** 2 for x in b) / (nb - 1)
    den = math.sqrt(va / na + vb / nb)
    if den == 0:
        return 0.0 if ma == mb else math.copysign(math.inf, ma - mb)
    return (ma - mb) / den


def percentile(sorted_values: Sequence[int], p: float) -> int:
    k = min(len(sorted_values) - 1, max(0, int(round(p / 100.0 * (len(sorted_values) - 1)))))
    return sorted_values[k]


def analyse(samples: Tuple[List[int], List[int]]) -> Dict[str, object]:
    a, b = samples
    pooled = sorted(a + b)
    tests = {"all": welch_t(a, b)}
    for p in CROPS:
        cut = percentile(pooled, p)
        tests[f"p{p:g}"] = welch_t([x for x in a if x <= cut], [x for x in b if x <= cut])
    max_abs = max(abs(t) for t in tests.values())
    return {
        "n": [len(a), len(b)],
        "mean": [sum(a) / max(len(a), 1), sum(b) / max(len(b), 1)],
        "median": [percentile(sorted(a), 50) if a else None, percentile(sorted(b), 50) if b else None],
        "t": {k: round(v, 3) for k, v in tests.items()},
        "max_abs_t": round(max_abs, 3),
        "verdict": "leak" if max_abs >= THRESHOLD else "no leak detected",
    }


def run_target(binary: Path, target: str, impl: str, samples: int, seed: int) -> Tuple[List[int], List[int]]:
    proc = subprocess.run([str(binary), target, impl, str(samples), str(seed)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    if proc.returncode == 3:
        raise LookupError(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"ct_timing {target} failed ({proc.returncode}): {proc.stderr.strip()}")
    out: Tuple[List[int], List[int]] = ([], [])
    for line in proc.stdout.splitlines():
        c, v = line.split()
        out[int(c)].append(int(v))
    return out


def main(argv: Sequence[str] = ()) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=1_000_000, help="timed calls per target (default %(default)s)")
    ap.add_argument("--impl", default="shani", choices=("shani", "portable", "auto"),
                    help="SHA-256 compression to time (default %(default)s)")
    ap.add_argument("--targets", default="verify,check,leaky",
                    help="comma-separated: verify, check, leaky (default %(default)s)")
    ap.add_argument("--seed", type=int, default=1, help="class order seed")
    ap.add_argument("--cc", default=os.environ.get("CC", "gcc"))
    ap.add_argument("--out", default=str(ROOT / "build" / "ct"), help="where the driver is built")
    ap.add_argument("--rebuild", action="store_true")
    ap.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = ap.parse_args(list(argv) or None)

    targets = [t for t in args.targets.split(",") if t]
    for t in targets:
        if t not in TARGETS:
            ap.error(f"unknown target {t!r}")
    binary = build(Path(args.out), args.cc, args.rebuild)
    report: Dict[str, object] = {"impl": args.impl, "samples": args.samples, "threshold": THRESHOLD,
                                 "results": []}
    results: List[Dict[str, object]] = []
    for t in targets:
        try:
            samples = run_target(binary, t, args.impl, args.samples, args.seed)
        except LookupError as e:
            print(f"ct_timing: {e}", file=sys.stderr)
            return 77
        r = {"target": t, "role": TARGETS[t], **analyse(samples)}
        results.append(r)
        print(f"{t:<7} ({TARGETS[t]:<7}) n={r['n'][0]}+{r['n'][1]}  mean cycles "  # type: ignore[index]
              f"{r['mean'][0]:.1f} / {r['mean'][1]:.1f}  max|t|={r['max_abs_t']}  "  # type: ignore[index]
              f"t={r['t']}  -> {r['verdict']}")
    report["results"] = results
    real_leak = any(r["verdict"] == "leak" for r in results if r["role"] == "real")
    control_seen = all(r["verdict"] == "leak" for r in results if r["role"] == "control")
    report["ok"] = not real_leak and control_seen
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    if real_leak:
        print("ct_timing: LEAK: a real target's timing depends on where the tag differs", file=sys.stderr)
        return 1
    if not control_seen:
        print("ct_timing: INCONCLUSIVE: the leaky control was not flagged (more --samples?)", file=sys.stderr)
        return 2
    print(f"ct_timing: ok on {args.impl}: no leak detected in the real targets; the control is flagged")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
