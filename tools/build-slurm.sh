#!/usr/bin/env bash
# Build and install the vendored Slurm (../shared/vendor/slurm-*.tar.xz) into a prefix outside
# the clone, for the real_slurm tests and the serving benchmark. Idempotent: when the prefix
# already holds a build of the same tarball (its sha256 is recorded there) it prints the prefix
# and exits at once.
#
#   SLURM_PREFIX   install prefix (default /opt/slurmauth-fast/slurm)
#   SLURM_TARBALL  source tarball (default: the one under ../shared/vendor next to the clone)
#   SLURM_JOBS     make -j (default: nproc)
#
# Prints the prefix as its last line of standard output; progress goes to standard error.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
prefix=${SLURM_PREFIX:-/opt/slurmauth-fast/slurm}
tarball=${SLURM_TARBALL:-}
if [ -z "$tarball" ]; then
    for candidate in "$here"/../shared/vendor/slurm-*.tar.xz; do
        [ -f "$candidate" ] && tarball=$candidate
    done
fi
if [ -z "$tarball" ] || [ ! -f "$tarball" ]; then
    echo "build-slurm: no Slurm tarball (set SLURM_TARBALL, or put it under ../shared/vendor)" >&2
    exit 2
fi
sum=$(sha256sum "$tarball" | cut -d' ' -f1)
stamp="$prefix/.slurmauth-fast-source.sha256"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$sum" ] && [ -x "$prefix/sbin/slurmctld" ]; then
    echo "build-slurm: $prefix already holds a build of $(basename "$tarball")" >&2
    echo "$prefix"
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive
if command -v apt-get >/dev/null 2>&1; then
    echo "build-slurm: installing build dependencies" >&2
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends \
        gcc make pkg-config libc6-dev xz-utils python3 \
        libjwt-dev libjson-c-dev libmunge-dev munge libssl-dev >/dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "build-slurm: unpacking $(basename "$tarball") into $work" >&2
tar -C "$work" -xJf "$tarball"
src=$(find "$work" -mindepth 1 -maxdepth 1 -type d | head -n 1)
cd "$src"
echo "build-slurm: configure (prefix $prefix)" >&2
./configure --prefix="$prefix" --sysconfdir="$prefix/etc" \
    --with-jwt --with-json --with-munge \
    --without-hdf5 --without-pmix --without-ucx --without-hwloc --without-nvml \
    --without-rsmi --without-yaml --without-lua --without-readline \
    >"$work/configure.log" 2>&1 || { tail -n 60 "$work/configure.log" >&2; exit 1; }
# The features the tests rely on must have been found.
echo "build-slurm: make -j${SLURM_JOBS:-$(nproc)}" >&2
make -j"${SLURM_JOBS:-$(nproc)}" >"$work/make.log" 2>&1 || { tail -n 60 "$work/make.log" >&2; exit 1; }
rm -rf "$prefix"
make install >"$work/install.log" 2>&1 || { tail -n 60 "$work/install.log" >&2; exit 1; }
for plugin in auth_slurm auth_jwt auth_munge hash_k12 hash_sha3; do
    if [ ! -f "$prefix/lib/slurm/$plugin.so" ]; then
        echo "build-slurm: $plugin.so was not built" >&2
        exit 1
    fi
done
echo "$sum" >"$stamp"
echo "build-slurm: installed into $prefix" >&2
echo "$prefix"
