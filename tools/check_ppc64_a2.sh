#!/usr/bin/env bash
# Builds ghostmlp's extension for the PowerPC A2 of Blue Gene/Q (64-bit, big-endian) through
# setup.py's own cross-build knobs, with Debian's cross GCC, and checks what comes out.
# Needs gcc-powerpc64-linux-gnu (apt-get install gcc-powerpc64-linux-gnu) and a Python with
# setuptools, Cython, numpy and scipy: the host's headers stand in for the target's (both
# LP64). It checks that the code builds and links for the A2; it runs nothing there.
# Usage, from the repository root: tools/check_ppc64_a2.sh [python]
set -euo pipefail
python=${1:-python3}
cross=${CROSS_CC:-powerpc64-linux-gnu-gcc}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
CC="$cross" LDSHARED="$cross -shared" \
GHOSTMLP_OPT_FLAGS="${GHOSTMLP_OPT_FLAGS:-"-O3 -fno-trapping-math -mcpu=a2 -mtune=a2"}" \
    "$python" setup.py -q build_ext --build-temp "$out/tmp" --build-lib "$out/lib" > "$out/log" 2>&1 \
    || { cat "$out/log" >&2; exit 1; }
library=$(find "$out/lib" -name '_kernels*.so')
kind=$(file -b "$library")
case "$kind" in
    *"64-bit MSB shared object"*PowerPC*) echo "ok: $cross builds _kernels for the A2: $kind" ;;
    *) echo "unexpected library: $kind" >&2; exit 1 ;;
esac
