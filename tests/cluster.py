"""The pytest fixture of a cluster on one machine (tools/cluster.py), removed after each test."""
import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "ghostmlp_tools_cluster", Path(__file__).resolve().parents[1] / "tools" / "cluster.py")
tool = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(tool)

# One BLAS thread a rank, as test_mpi.py's runs.
THREADS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def make_cluster(tmp_path, request, n_hosts, **options):
    """A Cluster of n_hosts under tmp_path, skipped with the reason where none can be made;
    its namespaces and processes are removed when the test ends, passed or failed."""
    reason = tool.can_build()
    if reason:
        pytest.skip(f"simulated cluster: {reason}")
    assert mpiexec(), "mpiexec not found: install the 'mpich' extra or a system MPI"
    cluster = tool.Cluster(tmp_path / "cluster", n_hosts, **options)
    request.addfinalizer(cluster.down)
    return cluster.up()


def ghostmlp_command(*args):
    """`python -m mpi4py -m ghostmlp ARGS` (mpi4py ends the job when a rank raises)."""
    return [sys.executable, "-m", "mpi4py", "-m", "ghostmlp", *map(str, args)]


def environment():
    return dict(os.environ, **THREADS)
