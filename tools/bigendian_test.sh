#!/usr/bin/env bash
# Runs ghostmlp big-endian: cross-builds the s390x wheel (tools/cross_wheel.sh), installs it in
# the Debian s390x root (tools/s390x_root.sh: built once, then reused from CACHE) and runs there,
# under qemu-s390x:
#   1. the serial suite, tests/serial.txt;
#   2. byte order across machines: a checkpoint written here loads there with the same weights
#      and predictions, and one written there loads here (tests/byteorder.py);
#   3. MPI: parallel equals serial at 2 ranks (tests/mpi/cases_model_parallel.py) and a
#      checkpoint saved on 2 ranks with MPI-IO loads on 1 (tests/mpi/checkpoint_roundtrip.py);
#      where binfmt_misc cannot run the s390x processes mpiexec spawns, one rank through
#      mpi4py instead, and it says so.
# With binfmt_misc (qemu-s390x registered, e.g. by binfmt-support) and root, programs run in
# a chroot with its own /proc, /sys and /dev/shm (unshare -m); otherwise python3 runs under
# qemu-s390x-static with the root as its library prefix.
# Needs what those two scripts need, and this repository's extension built in place for the
# host (PYTHON, default python3: python setup.py build_ext --inplace).
# Usage, from the repository: tools/bigendian_test.sh [CACHE]   (BE_TIMEOUT: seconds, 3600)
set -euo pipefail
repo=$(git -C "$(dirname "$0")" rev-parse --show-toplevel)
cd "$repo"
export PYTHON=${PYTHON:-python3}
limit=${BE_TIMEOUT:-3600}
root=$(tools/s390x_root.sh ${1:+"$1"})
stage=$(mktemp -d "$root/tmp/ghostmlp.XXXXXX")        # inside the root, seen there as /tmp/...
trap 'rm -rf "$stage"' EXIT
tools/cross_wheel.sh s390x "$stage/wheel" --root "$root"
mkdir "$stage/site"
(cd "$stage/site" && "$PYTHON" -m zipfile -e "$stage"/wheel/ghostmlp-*.whl .)
cp -r tests "$stage/"

if [ "$(id -u)" = 0 ] && grep -qs enabled /proc/sys/fs/binfmt_misc/qemu-s390x; then
    binfmt=yes
    inner=${stage#"$root"}
    # be COMMAND...: run an s390x COMMAND in the stage folder, in the root.
    be() {
        unshare -m sh -c 'root=$1 inner=$2; shift 2
            mount -t proc proc "$root/proc" && mount -t sysfs sysfs "$root/sys" &&
            mount -t tmpfs tmpfs "$root/dev/shm" &&
            exec chroot "$root" env -C "$inner" PYTHONPATH="$inner/site" OMP_NUM_THREADS=1 \
                OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 \
                OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$@"' be "$root" "$inner" "$@"
    }
else
    binfmt=no
    # Debian's alternatives (BLAS, LAPACK) are absolute links, which the host would resolve.
    libraries=$(for link in "$root"/etc/alternatives/lib*.so*; do dirname "$(readlink "$link")"
                done | sort -u | paste -sd:)
    be() {
        local program=$1; shift
        (cd "$stage" && PYTHONPATH="$stage/site" OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 \
            LD_LIBRARY_PATH="$libraries" QEMU_LD_PREFIX="$root" \
            qemu-s390x-static "$root/usr/bin/$program" "$@")
    }
fi
be python3 -c 'import sys, platform, ghostmlp, numpy
print(f"{platform.machine()} ({sys.byteorder}-endian), Python {platform.python_version()}, numpy {numpy.__version__}, ghostmlp from {ghostmlp.__file__}")'

echo "== serial suite (tests/serial.txt)"
start=$SECONDS
be timeout "$limit" python3 -m pytest -q -p no:cacheprovider @tests/serial.txt
echo "serial suite: $((SECONDS - start)) s"

echo "== byte order across machines"
PYTHONPATH=$repo "$PYTHON" tests/byteorder.py write "$stage/here"
be python3 tests/byteorder.py check here
be python3 tests/byteorder.py write there
PYTHONPATH=$repo "$PYTHON" tests/byteorder.py check "$stage/there"

echo "== MPI"
mkdir "$stage/mpi"
if [ $binfmt = yes ]; then
    start=$SECONDS
    # Debian's mpi4py is built on Open MPI, whose launcher runs as root only when told.
    launch=(timeout "$limit" mpiexec --oversubscribe)
    be "${launch[@]}" -n 2 python3 -m mpi4py -m pytest -q -p no:cacheprovider \
        tests/mpi/cases_model_parallel.py
    be "${launch[@]}" -n 2 python3 -m mpi4py tests/mpi/checkpoint_roundtrip.py save mpi
    be "${launch[@]}" -n 1 python3 -m mpi4py tests/mpi/checkpoint_roundtrip.py load mpi
    echo "MPI at 2 ranks: ok, $((SECONDS - start)) s"
else
    be python3 -m mpi4py tests/mpi/checkpoint_roundtrip.py save mpi
    be python3 -m mpi4py tests/mpi/checkpoint_roundtrip.py load mpi
    echo "MPI: one rank only (no binfmt_misc for qemu-s390x: mpiexec's processes cannot run)"
fi
echo "ok: big-endian s390x run passed"
