#!/usr/bin/env bash
# Constant-time check: build fuzz/ct/ct_driver.c against the C core with gcc
# and clang (at -O3, the level the extension ships with, -O2 and -O0) and run it
# under valgrind memcheck with the key bytes marked undefined. Any
# "Conditional jump or move depends on uninitialised value" (or a memory
# address computed from the secret) is a secret-dependent branch.
#
#   tools/ct_check.sh           exit 0 when memcheck reports no error
#   tools/ct_check.sh leaky     also run the deliberately branching comparison:
#                               exit non-zero, with leaky_equal in the report
#
# The valgrind report goes to stderr. Environment: CT_OUT (default build/ct) keeps
# the binaries, CT_CC (default "gcc clang") and CT_OPTS (default "-O3 -O2 -O0")
# choose the builds checked.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${CT_OUT:-build/ct}
# Both compilers when present: either may turn a select into a jump.
COMPILERS=${CT_CC:-gcc clang}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "ct_check: valgrind is not installed" >&2; exit 77; }
[ -f /usr/include/valgrind/memcheck.h ] || { echo "ct_check: valgrind/memcheck.h missing (apt-get install valgrind)" >&2; exit 77; }
status=0
for cc in $COMPILERS; do
command -v "$cc" >/dev/null || continue
for opt in ${CT_OPTS:--O3 -O2 -O0}; do
    bin=$OUT/ct_driver-$cc$opt
    "$cc" -std=c99 -D_DEFAULT_SOURCE -DSA_CT_CHECK "$opt" -gdwarf-4 -fno-strict-aliasing -Icsrc \
        fuzz/ct/ct_driver.c csrc/*.c -o "$bin"
    echo "== valgrind memcheck, ct_driver built with $cc $opt ${1:-}" >&2
    valgrind --tool=memcheck --error-exitcode=99 --track-origins=yes --num-callers=20 \
        "$bin" "$@" || status=$?
done
done
exit $status
