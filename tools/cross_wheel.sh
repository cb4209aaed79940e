#!/usr/bin/env bash
# Cross-builds a wheel of ghostmlp on this machine for a 64-bit big-endian Linux CPU:
#   ppc64  the PowerPC A2 of Blue Gene/Q: powerpc64-linux-gnu-gcc -mcpu=a2 -mtune=a2
#          -> OUTDIR/ghostmlp-*-linux_ppc64.whl
#   s390x  IBM Z: s390x-linux-gnu-gcc -> OUTDIR/ghostmlp-*-linux_s390x.whl
# against a target root that holds the target's Python: ROOT$INCLUDEPY (Python.h, pyconfig.h),
# ROOT/.../lib/pythonX.Y/_sysconfigdata_*.py and numpy's headers (numpy >= 2). The build
# Python reads the target's configuration (EXT_SUFFIX, SOABI, VERSION: the wheel's tags) through
# CPython's cross-build variables _PYTHON_SYSCONFIGDATA_NAME and _PYTHON_HOST_PLATFORM;
# setup.py's own knobs (CC, LDSHARED, CFLAGS, GHOSTMLP_OPT_FLAGS) choose the compiler.
# Without --root the Debian s390x root of tools/s390x_root.sh is used (cache: GHOSTMLP_CACHE);
# for ppc64 its Python headers, also 64-bit big-endian, stand in for a PowerPC Python, which
# Debian does not have: a site passes the root of its own target Python.
# Needs apt-get install gcc-powerpc64-linux-gnu gcc-s390x-linux-gnu file, and a build Python
# (PYTHON, default python3) with setuptools, Cython, numpy and build; a clean copy of the
# working tree is built, so no host build output can leak into the wheel.
# Usage, from the repository: tools/cross_wheel.sh ppc64|s390x OUTDIR [--root DIR]
set -euo pipefail
[ $# -eq 2 ] || [ $# -eq 4 ] && [ "${3:---root}" = --root ] \
    || { echo "usage: $0 ppc64|s390x OUTDIR [--root DIR]" >&2; exit 2; }
target=$1 outdir=$2
case "$target" in
    ppc64) triple=powerpc64-linux-gnu kind='64-bit MSB shared object, 64-bit PowerPC'
           flags="-O3 -fno-trapping-math -mcpu=a2 -mtune=a2" ;;
    s390x) triple=s390x-linux-gnu kind='64-bit MSB shared object, IBM S/390'
           flags="-O3 -fno-trapping-math" ;;
    *) echo "$0: TARGET must be ppc64 or s390x, got $target" >&2; exit 2 ;;
esac
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
python=${PYTHON:-python3}
cc=${CROSS_CC:-$triple-gcc}
root=${4:-$("$repo/tools/s390x_root.sh" ${GHOSTMLP_CACHE:+"$GHOSTMLP_CACHE"})}
root=$(cd "$root" && pwd)

data=$(find "$root" -maxdepth 5 -path '*/lib/python3*/_sysconfigdata_*.py' ! -type l | head -1)
[ -n "$data" ] || { echo "$0: no _sysconfigdata_*.py of a Python 3 under $root" >&2; exit 1; }
read -r version suffix multiarch include < <("$python" -c '
import runpy, sys
v = runpy.run_path(sys.argv[1])["build_time_vars"]
print(v["VERSION"], v["EXT_SUFFIX"], v.get("MULTIARCH") or "-", v["INCLUDEPY"])' "$data")
numpy_config=$(find "$root" -path '*/numpy/_core/include/numpy/numpyconfig.h' | head -1)
[ -f "$root$include/Python.h" ] && [ -n "$numpy_config" ] \
    || { echo "$0: $root lacks Python.h ($include) or numpy >= 2's headers" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/sysconfig" "$work/include" "$work/src" "$outdir"
cp "$data" "$work/sysconfig/"
if [ "$multiarch" != - ] && [ "$multiarch" != "$triple" ]; then
    # A stand-in root: its Debian pyconfig.h includes <TRIPLE/pythonX.Y/pyconfig.h>.
    echo "note: the $multiarch Python $version headers of $root stand in for $triple's" >&2
    mkdir -p "$work/include/$triple/python$version"
    cp "$root/usr/include/$multiarch/python$version/pyconfig.h" "$work/include/$triple/python$version/"
    suffix=${suffix/$multiarch/$triple}
fi
git -C "$repo" ls-files -z --cached --others --exclude-standard \
    | tar -C "$repo" --null -T - -cf - | tar -C "$work/src" -xf -

(cd "$work/src" &&
    CC="$cc" LDSHARED="$cc -shared" GHOSTMLP_OPT_FLAGS="${GHOSTMLP_OPT_FLAGS:-$flags}" \
    CFLAGS="-I$root$include -I$(dirname "$(dirname "$numpy_config")") -idirafter $work/include -idirafter $root/usr/include" \
    PYTHONPATH="$work/sysconfig" _PYTHON_SYSCONFIGDATA_NAME=$(basename "$data" .py) \
    _PYTHON_HOST_PLATFORM="linux-$target" SETUPTOOLS_EXT_SUFFIX="$suffix" \
    "$python" -m build --wheel --no-isolation --outdir "$work/dist") > "$work/log" 2>&1 \
    || { cat "$work/log" >&2; exit 1; }

wheel=$(echo "$work"/dist/ghostmlp-*-linux_"$target".whl)
[ -f "$wheel" ] || { ls "$work/dist" >&2; echo "$0: no linux_$target wheel" >&2; exit 1; }
mkdir "$work/unpacked" && (cd "$work/unpacked" && "$python" -m zipfile -e "$wheel" .)
for library in "$work"/unpacked/ghostmlp/_*.so; do
    found=$(file -b "$library")
    [[ $found == *"$kind"* ]] || { echo "$0: unexpected $(basename "$library"): $found" >&2; exit 1; }
    echo "$(basename "$library"): $found"
done
cp "$wheel" "$outdir/"
echo "ok: $outdir/$(basename "$wheel")"
