#!/usr/bin/env bash
# Builds (or reuses) a Debian s390x root: a 64-bit big-endian Python with numpy, scipy,
# mpi4py, pytest, scikit-learn (a test reference) and Open MPI (which Debian's mpi4py is
# built on) from Debian, for cross builds (its headers and sysconfig data) and for running
# ghostmlp under qemu-s390x. Prints the root's path.
# Needs root, mmdebstrap and qemu-user-static with binfmt_misc (mmdebstrap runs the
# packages' maintainer scripts inside it): apt-get install mmdebstrap qemu-user-static
# binfmt-support; mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc if it is not.
# Debian's testing suite (forky) has the numpy >= 2 the build needs; stable's mirror
# validity dates lapse, so they are not checked.
# Usage: tools/s390x_root.sh [CACHE]   (default ${XDG_CACHE_HOME:-~/.cache}/ghostmlp)
set -euo pipefail
cache=${1:-${XDG_CACHE_HOME:-$HOME/.cache}/ghostmlp}
root=$cache/s390x-root
suite=${S390X_SUITE:-forky}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
packages=python3,python3-dev,python3-numpy,python3-scipy,python3-mpi4py,python3-pytest,python3-threadpoolctl,python3-sklearn,openmpi-bin
if [ ! -x "$root/usr/bin/python3" ]; then
    mkdir -p "$cache"
    rm -rf "$root.tmp"
    mmdebstrap --arch=s390x --variant=apt --include="$packages" \
        --aptopt='Acquire::Check-Valid-Until "false"' "$suite" "$root.tmp" "$mirror" >&2
    mv "$root.tmp" "$root"
fi
echo "$root"
