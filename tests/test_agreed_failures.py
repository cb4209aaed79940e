"""Failures under mpiexec that one rank alone sees, a full disk under MPI-IO, a stalled
evaluation: one message, a non-zero exit, no abort where the ranks can agree, within seconds."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ghostmlp
from ghostmlp.cli import main
from ghostmlp.watchdog import STALL_EXIT
from test_checkpoint import build
from test_mpi import mpiexec

HERE = Path(__file__).resolve().parent
LIMIT_SECONDS = 60
TRAIN = ["train", "--epochs", "1", "--hidden", "4", "--batch-size", "8"]


def launch(parts, folder, timeout=LIMIT_SECONDS):
    """(completed process, seconds) of `mpiexec -n N1 ARGS1 : -n N2 ARGS2 ...`: parts are
    (ranks, argv) pairs, so that ranks may be given different paths."""
    command = [mpiexec()]
    for count, argv in parts:
        command += [":"] * (len(command) > 1) + ["-n", str(count), sys.executable,
                                                  *map(str, argv)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    started = time.monotonic()
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                          timeout=timeout, env=env)
    return done, time.monotonic() - started


def ghostmlp_argv(*args):
    return ["-m", "ghostmlp", *args]


def write_npy(folder):
    """X[60, 4] float32 and y[60] of three classes as .npy files in folder."""
    folder.mkdir(exist_ok=True)
    X = np.random.default_rng(0).normal(size=(60, 4)).astype(np.float32)
    np.save(folder / "X.npy", X)
    np.save(folder / "y.npy", np.argmax(X[:, :3], axis=1))
    return folder / "X.npy", folder / "y.npy"


def truncated(path, folder):
    folder.mkdir(exist_ok=True)
    cut = folder / path.name
    cut.write_bytes(path.read_bytes()[:200])
    return cut


def assert_agreed(done, seconds, message):
    """Exit 1, the message exactly once, no MPI_Abort, within LIMIT_SECONDS / 2."""
    err = done.stderr
    assert done.returncode == 1, err[-3000:]
    assert len(re.findall(message, err)) == 1, err[-3000:]
    assert "Abort" not in err + done.stdout and "(rank 1 of" not in err, err[-3000:]
    assert seconds < LIMIT_SECONDS / 2, seconds


@pytest.mark.parametrize("ranks, damage", [(2, "missing"), (3, "truncated")])
def test_npy_data_one_rank_cannot_map_fails_every_rank(tmp_path, ranks, damage):
    """.npy inputs that every rank memory-maps, missing or truncated where rank 1 looks:
    every rank raises the same error naming rank 1, its host and the file; rank 0 prints
    it once and the job exits 1 without an abort."""
    X, y = write_npy(tmp_path / "data")
    bad = tmp_path / "elsewhere" / "X.npy" if damage == "missing" else truncated(
        X, tmp_path / "elsewhere")
    good = ghostmlp_argv(*TRAIN, "--inputs", X, "--labels", y)
    parts = [(1, good), (1, ghostmlp_argv(*TRAIN, "--inputs", bad, "--labels", y))]
    parts += [(1, good)] * (ranks - 2)
    done, seconds = launch(parts, tmp_path)
    error = (rf"\[Errno 2\] No such file or directory: '{re.escape(str(bad))}'"
             if damage == "missing" else
             rf"{re.escape(str(bad))}: not a readable \.npy file without pickled objects")
    assert_agreed(done, seconds, rf"ghostmlp train: error: rank 1 of {ranks} \(host [^)]+\): "
                                 + error)


def test_a_checkpoint_folder_missing_on_one_rank_fails_every_rank(tmp_path):
    done, seconds = launch([(1, ghostmlp_argv(*TRAIN, "--checkpoint", tmp_path / "net.gmlp")),
                            (1, ghostmlp_argv(*TRAIN, "--checkpoint", "gone/net.gmlp"))],
                           tmp_path)
    assert_agreed(done, seconds, r"ghostmlp train: error: rank 1 of 2 \(host [^)]+\): "
                                 r"--checkpoint gone/net.gmlp: no such folder")
    assert not (tmp_path / "net.gmlp").exists()


def test_an_option_out_of_range_fails_every_rank_once(tmp_path):
    for args, message in ((["train", "--momentum", "1.5", "--optimizer", "sgd"],
                           r"ghostmlp train: error: --momentum must be a finite number >= 0 "
                           r"and < 1, got 1\.5"),
                          (["bench", "--iterations", "0"],
                           r"ghostmlp bench: error: --iterations must be a positive integer, "
                           r"got 0")):
        done, seconds = launch([(2, ghostmlp_argv(*args))], tmp_path)
        assert_agreed(done, seconds, message)


@pytest.mark.parametrize("disk", ["tmpfs", "rank 1 only"])
def test_a_full_disk_under_mpi_io_keeps_the_old_checkpoint(tmpfs, tmp_path, disk):
    """2 ranks save a 2.6 MB checkpoint collectively over a small one, on a 2 MiB tmpfs or
    with rank 1's writes failing alone (ENOSPC; rank 0's succeed, and rank 0 renames): each
    rank raises an OSError naming the path and the full disk, the old file is left byte for
    byte, the temporary removed."""
    folder = tmpfs("size=2m") if disk == "tmpfs" else tmp_path
    path = folder / "net.gmlp"
    ghostmlp.save(build(), path)
    before = path.read_bytes()
    done, seconds = launch([(2, [HERE / "mpi" / "save_big.py", path,
                                 *(["1"] if disk == "rank 1 only" else [])])], folder)
    assert done.returncode != 0 and seconds < LIMIT_SECONDS / 2, done.stderr[-3000:]
    cause = "MPI-IO: [^:]*No space left on device" if disk == "tmpfs" else (
        r"\[Errno 28\] No space left on device")
    for rank in (0, 1):         # (hydra may run two ranks' lines together)
        assert re.search(rf"rank {rank}: {re.escape(str(path))}: checkpoint not saved \(any "
                         rf"previous checkpoint there is unchanged\): {cause}",
                         done.stdout), done.stdout[-3000:] + done.stderr[-3000:]
    assert path.read_bytes() == before
    assert sorted(os.listdir(folder)) == ["net.gmlp"]
    assert ghostmlp.load(path).epochs_trained == 0


STALL_TIMEOUT = 3


def test_a_rank_stopped_during_evaluate_ends_the_job_by_the_watchdog(tmp_path):
    """`ghostmlp evaluate --stall-timeout 3` on 2 ranks, rank 1 stopped at its first gather:
    rank 0's watchdog names itself, the operation and the layer, and ends the job."""
    path = tmp_path / "net.gmlp"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--checkpoint", str(path)]) == 0
    done, seconds = launch([(2, [HERE / "mpi" / "stop_in_allgather.py", "evaluate",
                                 "--checkpoint", path, "--stall-timeout", STALL_TIMEOUT])],
                           tmp_path, timeout=STALL_TIMEOUT + 30 + 30)
    assert done.returncode == STALL_EXIT, done.stderr[-3000:]
    assert re.search(r"ghostmlp: stall: rank 0 of 2 on host \S+ made no progress for \d+ s in "
                     r"allgather \(layer \d\); ending the job \(stall_timeout 3 s\)",
                     done.stderr), done.stderr[-3000:]
    assert STALL_TIMEOUT <= seconds < STALL_TIMEOUT + 30, seconds


@pytest.mark.parametrize("command", ["evaluate", "predict"])
def test_stall_timeout_reaches_the_loaded_network(tmp_path, monkeypatch, capsys, command):
    path = tmp_path / "net.gmlp"
    assert main(["train", "--epochs", "1", "--hidden", "8", "--checkpoint", str(path)]) == 0
    seen = []
    real_load = ghostmlp.cli.load

    def load(*args, **kwargs):
        seen.append(kwargs["stall_timeout"])
        return real_load(*args, **kwargs)

    monkeypatch.setattr(ghostmlp.cli, "load", load)
    output = ["--output", str(tmp_path / "out.txt")] if command == "predict" else []
    assert main([command, "--checkpoint", str(path), "--stall-timeout", "7.5", *output]) == 0
    assert seen == [7.5]
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--stall-timeout STALL_TIMEOUT" in capsys.readouterr().out
    assert main([command, "--checkpoint", str(path), "--stall-timeout", "-1", *output]) == 1
    assert (f"ghostmlp {command}: error: --stall-timeout must be a finite number >= 0, "
            "got -1.0") in capsys.readouterr().err
    assert seen == [7.5]
