#!/usr/bin/env bash
# Build every libFuzzer harness (fuzz/fuzz_*.c, clang -fsanitize=fuzzer,address,undefined)
# and run each one, then the atheris harness over the Python API, for
# FUZZ_SECONDS seconds apiece. Exits non-zero as soon as a harness crashes,
# leaks, times out or breaks an invariant (crash inputs land in $FUZZ_OUT/artifacts).
#
#   fuzz/run.sh                       # 20 s per harness
#   FUZZ_SECONDS=600 fuzz/run.sh      # a longer campaign
#   fuzz/run.sh fuzz_jws py           # only these harnesses ("py", "py_sack" = atheris)
#
# Environment: FUZZ_SECONDS (default 20), FUZZ_OUT (default build/fuzz: binaries,
# working corpora, artifacts; the committed seeds in fuzz/corpus/ are only read),
# PYTHON (default: .venv/bin/python if present, else python3), CC (default clang).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SECONDS_EACH=${FUZZ_SECONDS:-20}
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
CC=${CC:-clang}
if [ -z "${PYTHON:-}" ]; then
    if [ -x "$ROOT/.venv/bin/python" ]; then PYTHON=$ROOT/.venv/bin/python; else PYTHON=python3; fi
fi
mkdir -p "$OUT/bin" "$OUT/corpus" "$OUT/artifacts"

SELECTED=" $* "
want() {  # is harness $1 selected on the command line (all when none given)?
    [ "$SELECTED" = "  " ] && return 0
    case "$SELECTED" in *" $1 "*) return 0 ;; esac
    return 1
}

sources=(csrc/*.c)
status=0
for h in fuzz/fuzz_*.c; do
    name=$(basename "$h" .c)
    want "$name" || continue
    bin=$OUT/bin/$name
    echo "== build $name"
    "$CC" -std=c99 -D_DEFAULT_SOURCE -g -O1 -fno-omit-frame-pointer \
        -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
        -Icsrc -Ifuzz "$h" "${sources[@]}" -o "$bin"
    work=$OUT/corpus/$name
    mkdir -p "$work"
    seeds=()
    [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
    dict=()
    [ -f "fuzz/$name.dict" ] && dict=("-dict=fuzz/$name.dict")
    echo "== run $name for ${SECONDS_EACH}s"
    if ! UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ASAN_OPTIONS=detect_leaks=1 \
        "$bin" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=1024 -max_len=16384 \
            -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" "${dict[@]}" \
            "$work" "${seeds[@]}" 2>"$OUT/$name.log"; then
        echo "!! $name FAILED; log: $OUT/$name.log" >&2
        tail -n 40 "$OUT/$name.log" >&2
        status=1
        continue
    fi
    grep -E '^stat::number_of_executed_units|^stat::peak_rss_mb' "$OUT/$name.log" | sed "s/^/   $name /"
done

# atheris harnesses: name, script (seed corpus fuzz/corpus/NAME)
for spec in "py:fuzz/py_fuzz.py:Python API" "py_sack:fuzz/py_fuzz_sack.py:SACK kiosk reader, chunked"; do
    IFS=: read -r name script what <<<"$spec"
    want "$name" || continue
    echo "== run atheris harness $name ($what) for ${SECONDS_EACH}s"
    if ! "$PYTHON" -c 'import atheris' 2>/dev/null; then
        echo "!! atheris is not installed for $PYTHON (pip install atheris)" >&2
        status=1
        continue
    fi
    mkdir -p "$OUT/corpus/$name"
    seeds=()
    [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
    if ! "$PYTHON" "$script" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 \
            -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$name-" \
            "$OUT/corpus/$name" "${seeds[@]}" 2>"$OUT/$name.log"; then
        echo "!! atheris harness $name FAILED; log: $OUT/$name.log" >&2
        tail -n 40 "$OUT/$name.log" >&2
        status=1
    else
        grep -E '^stat::number_of_executed_units' "$OUT/$name.log" | sed "s/^/   $name /"
    fi
done
exit $status
