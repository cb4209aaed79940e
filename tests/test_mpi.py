"""Runs tests/mpi/ under mpiexec at 1, 2, 3 and 4 ranks, each within a time limit."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
CASES = [HERE / "mpi" / name for name in
         ("cases_model_parallel.py", "cases_grid.py", "cases_losses.py", "cases_data.py",
          "cases_checkpoint.py", "cases_train.py", "cases_estimators.py")]
LIMIT_SECONDS = 300


def mpiexec():
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


@pytest.mark.parametrize("ranks", [1, 2, 3, 4])
def test_model_parallel_cases(ranks, tmp_path):
    launcher = mpiexec()
    assert launcher, "mpiexec not found: install the 'mpich' extra or a system MPI"
    command = [launcher, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "pytest",
               "-q", "-p", "no:cacheprovider", *map(str, CASES)]
    run(command, tmp_path)


def run(command, folder):
    """Run an mpiexec command within the time limit, outside the source tree: `python -m`
    puts the working folder first on sys.path, and the source ghostmlp has no kernels."""
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, timeout=LIMIT_SECONDS,
                            env=env, cwd=folder)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_checkpoint_saved_on_3_ranks_loads_on_2_and_1(tmp_path):
    script = str(HERE / "mpi" / "checkpoint_roundtrip.py")
    for ranks, mode in [(3, "save"), (2, "load"), (1, "load")]:
        run([mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", script, mode,
             str(tmp_path)], tmp_path)


def test_memory_mapped_data_larger_than_a_ranks_memory(tmp_path):
    """Network.fit and `ghostmlp train` on .npy files larger than a rank may allocate."""
    rows, columns = 40_000, 1_000        # 160 MB of float32: 320 MB as the network's float64
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32,
                                  shape=(rows, columns))
    for start in range(0, rows, 5_000):
        X[start:start + 5_000] = np.random.default_rng(start).random((5_000, columns))
    X.flush()
    del X
    np.save(tmp_path / "y.npy", np.arange(rows) % 4)
    for script in ("mmap_fit.py", "mmap_train.py"):     # Network.fit, then `ghostmlp train`
        run([mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(HERE / "mpi" / script),
             str(tmp_path)], tmp_path)
