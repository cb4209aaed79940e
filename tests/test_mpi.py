"""Runs tests/mpi/ under mpiexec at 1, 2, 3 and 4 ranks, each within a time limit."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

CASES = (Path(__file__).parent / "mpi" / "cases_model_parallel.py").resolve()
LIMIT_SECONDS = 300


def mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_model_parallel_cases(ranks, tmp_path):
    launcher = mpiexec()
    assert launcher, "mpiexec not found: install the 'mpich' extra or a system MPI"
    command = [launcher, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "pytest",
               "-q", "-p", "no:cacheprovider", str(CASES)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    # Run outside the source tree: `python -m` puts the working folder first on sys.path,
    # and the source folder's ghostmlp has no compiled kernels.
    result = subprocess.run(command, capture_output=True, text=True, timeout=LIMIT_SECONDS,
                            env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
