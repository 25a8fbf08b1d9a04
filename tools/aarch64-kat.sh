#!/usr/bin/env bash
# The C core on aarch64, from an x86-64 machine: every csrc/ unit compiled with
# aarch64-linux-gnu-gcc and warnings as errors, linked statically with the known-answer
# test driver (tools/kat/kat.c, vectors in tools/kat/vectors.h), and run under
# qemu-aarch64 on two CPU models. Automatic selection must pick the ARMv8 SHA-2 path
# (HWCAP_SHA2), which the driver checks against the vectors and, bit for bit, against
# the portable code; every check also runs with every implementation forced portable.
# Debian packages: gcc-aarch64-linux-gnu qemu-user. Also runs the driver natively
# (gcc, x86-64: SHA-NI, AVX2, AVX-512 where the CPU has them).
set -euo pipefail
cd "$(dirname "$0")/.."

CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
QEMU=${QEMU_AARCH64:-qemu-aarch64}
for tool in "$CC" "$QEMU" gcc; do
    command -v "$tool" >/dev/null || { echo "aarch64-kat: $tool not found (apt-get install gcc-aarch64-linux-gnu qemu-user)" >&2; exit 1; }
done

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
flags=(-std=c99 -D_DEFAULT_SOURCE -O2 -Wall -Wextra -Werror -pedantic)
# every unit the extension is built from (csrc/fuzz.c is a fuzzing entry point with a
# fixed key: it is compiled with the others below, but not linked into the driver)
mapfile -t units < <(ls csrc/*.c)

echo "== aarch64: strict compile of ${#units[@]} units ($("$CC" -dumpfullversion))"
for f in "${units[@]}"; do
    "$CC" "${flags[@]}" -c "$f" -o "$out/$(basename "$f" .c).o"
done
rm -f "$out/fuzz.o"
"$CC" "${flags[@]}" -Icsrc -Itools/kat -c tools/kat/kat.c -o "$out/kat.o"
"$CC" -static -o "$out/kat-aarch64" "$out"/*.o
file "$out/kat-aarch64" 2>/dev/null | sed 's/^/   /' || true

run() {  # run <cpu> <expected automatic SHA-256 selection>
    echo "== qemu-aarch64 -cpu $1 (expect SHA-256: $2)"
    "$QEMU" -cpu "$1" "$out/kat-aarch64" --expect-sha256 "$2"
}
# Every CPU model of qemu-user 7.2 reports HWCAP_SHA2, so the fallback is checked by the
# driver itself: each run does every check with the portable code forced, then with
# automatic selection, then portable against ARMv8 on generated inputs, and checks the
# selection rule for HWCAP words without SHA-2.
run max armv8          # every feature qemu has (v8.x + SVE, ...)
run cortex-a53 armv8   # a baseline ARMv8.0-A core with the crypto extension

# clang compiles the ARMv8 SHA-2 code only for a unit built with the crypto extension
# (see csrc/sha256.c): that build too, linked by the cross gcc.
if command -v clang >/dev/null && [ -d /usr/aarch64-linux-gnu/include ]; then
    echo "== clang $(clang -dumpversion) --target=aarch64-linux-gnu -march=armv8-a+crypto, qemu -cpu max"
    mkdir "$out/clang"
    for f in $(printf '%s\n' "${units[@]}" | grep -v '^csrc/fuzz\.c$') tools/kat/kat.c; do
        clang --target=aarch64-linux-gnu --sysroot=/usr/aarch64-linux-gnu -isystem /usr/aarch64-linux-gnu/include \
            -march=armv8-a+crypto "${flags[@]}" -Icsrc -Itools/kat -c "$f" -o "$out/clang/$(basename "$f" .c).o"
    done
    "$CC" -static -o "$out/kat-aarch64-clang" "$out"/clang/*.o
    "$QEMU" -cpu max "$out/kat-aarch64-clang" --expect-sha256 armv8 | tail -n 2
fi

echo "== native x86-64 build of the same driver"
gcc "${flags[@]}" -Icsrc -Itools/kat tools/kat/kat.c $(printf '%s\n' "${units[@]}" | grep -v '^csrc/fuzz\.c$') -o "$out/kat-native"
"$out/kat-native"
