"""Training across hosts of a simulated cluster (network namespaces, TCP) equals one host."""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import ghostmlp
from ghostmlp.cli import main
from ghostmlp.watchdog import STALL_EXIT
from cluster import environment, ghostmlp_command, make_cluster, mpiexec

LIMIT_SECONDS = 120
TRAIN = ("--hidden", 7, 5, "--max-epochs", 2, "--batch-size", 8, "--dtype", "float64",
         "--test-fraction", 0, "--seed", 3)


def write_data(folder):
    """A three-class text data set (the format rank 0 reads and broadcasts)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(48, 6))
    np.savetxt(folder / "X.txt", X)
    np.savetxt(folder / "y.txt", np.argmax(X[:, :3], axis=1), fmt="%d")


@pytest.mark.parametrize("hosts", [2, 3])
@pytest.mark.parametrize("layout", ["model", "data"])
def test_training_across_hosts_equals_one_host(tmp_path, request, hosts, layout):
    """Rank 0 reads the data from its node-local folder (the other hosts have none) and the
    checkpoint is written across the hosts into a shared folder; it loads on one host with
    the weights of the serial run."""
    cluster = make_cluster(tmp_path, request, hosts, local=True)
    write_data(cluster.root / "nodes" / "h0")
    local = cluster.local_folder
    grid = f"1x{hosts}" if layout == "model" else f"{hosts}x1"
    saved = cluster.shared / "net.gmlp"
    code, out, err, _ = cluster.run(
        cluster.mpiexec(mpiexec(), hosts, ghostmlp_command(
            "train", "--inputs", local / "X.txt", "--labels", local / "y.txt", *TRAIN,
            "--grid", grid, "--checkpoint", saved)),
        timeout=LIMIT_SECONDS, cwd=cluster.shared, env=environment())
    assert code == 0, out[-3000:] + err[-3000:]
    assert not list((cluster.root / "nodes" / "h1").iterdir())   # no copy of the data there

    serial = cluster.root / "serial"
    serial.mkdir()
    write_data(serial)
    reference = serial / "net.gmlp"
    subprocess.run([sys.executable, "-m", "ghostmlp", "train", "--inputs", serial / "X.txt",
                    "--labels", serial / "y.txt", *map(str, TRAIN), "--checkpoint", reference],
                   check=True, capture_output=True, timeout=LIMIT_SECONDS, cwd=serial,
                   env=environment())
    across, alone = ghostmlp.load(saved), ghostmlp.load(reference)
    assert across.epochs_trained == alone.epochs_trained == 2
    for (w, b), (w1, b1) in zip(across.get_weights(), alone.get_weights()):
        np.testing.assert_allclose(w, w1, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(b, b1, rtol=1e-12, atol=1e-14)


def test_ranks_see_their_own_host(tmp_path, request):
    """Each rank's host name is its namespace's, and traffic between hosts crosses the links."""
    cluster = make_cluster(tmp_path, request, 2)
    script = cluster.shared / "hosts.py"
    script.write_text("import socket\nimport numpy as np\nfrom mpi4py import MPI\n"
                      "a = np.ones(250_000)\nMPI.COMM_WORLD.Allreduce(MPI.IN_PLACE, a)\n"
                      "print(f'{MPI.COMM_WORLD.Get_rank()} {socket.gethostname()} {int(a[0])}', flush=True)\n")
    before = received(cluster, "h1")
    code, out, err, _ = cluster.run(
        cluster.mpiexec(mpiexec(), 4, [sys.executable, script], ppn=2),
        timeout=LIMIT_SECONDS, cwd=cluster.shared, env=environment())
    assert code == 0, err
    # (hydra forwards each rank's output as it comes: lines of two ranks may run together)
    assert sorted(re.findall(r"\d h\d 4", out)) == ["0 h0 4", "1 h0 4", "2 h1 4", "3 h1 4"]
    assert received(cluster, "h1") - before > 250_000 * 8     # at least one copy of a


def received(cluster, host):
    code, out, err, _ = cluster.run(
        cluster.on(host, ["cat", "/sys/class/net/eth0/statistics/rx_bytes"]), timeout=30)
    return int(out)


STALL_TIMEOUT = 20
STALL_MESSAGE = (r"ghostmlp: stall: rank \d of 2 on host h\d made no progress for \d+ s in "
                 r"[a-z_ ]+ \((layer \d+|no layer)\); ending the job \(stall_timeout 20 s\)")


def start_long_training(cluster):
    """`ghostmlp train` on 2 hosts (one rank each, model-parallel) for far longer than a test,
    with a checkpoint every 5 epochs; returns the process once the first checkpoint is on disk."""
    saved = cluster.shared / "net.gmlp"
    with (cluster.root / "train.log").open("w") as log:     # a line an epoch: not a pipe
        process = cluster.start(
            cluster.mpiexec(mpiexec(), 2, ghostmlp_command(
                "train", "--hidden", 32, "--max-epochs", 100_000, "--n-iter-no-change", 0,
                "--batch-size", 16, "--grid", "1x2", "--checkpoint", saved,
                "--checkpoint-every", 5, "--stall-timeout", STALL_TIMEOUT)),
            cwd=cluster.shared, env=environment(), stdout=log)
    deadline = time.monotonic() + LIMIT_SECONDS
    while not saved.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no checkpoint written"
        time.sleep(0.2)
    return process, saved


def rank_pid(cluster, host):
    """The pid of the ghostmlp rank running on host."""
    for pid in cluster.pids(host):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"ghostmlp" in command and b"hydra_pmi_proxy" not in command[0]:
            return pid
    raise AssertionError(f"no rank on {host}")


@pytest.mark.parametrize("failure", ["link down", "SIGSTOP", "SIGKILL"])
def test_a_lost_host_or_rank_ends_the_job(tmp_path, request, failure):
    """A host whose link goes down, or a rank frozen, ends the job within stall_timeout + 30 s
    with the watchdog's message (a killed rank, sooner); the last checkpoint loads."""
    cluster = make_cluster(tmp_path, request, 2)
    process, saved = start_long_training(cluster)
    if failure == "link down":
        cluster.link("h1", up=False)
    else:
        os.kill(rank_pid(cluster, "h1"), getattr(signal, failure))
    code, _, err, seconds = cluster.wait(process, STALL_TIMEOUT + 30 + 30)
    out = (cluster.root / "train.log").read_text()
    assert code != 0, out[-2000:] + err[-2000:]
    assert seconds <= STALL_TIMEOUT + 30, (seconds, err[-2000:])
    if failure == "SIGKILL":
        assert seconds < STALL_TIMEOUT, (seconds, err[-2000:])
    else:
        assert code == STALL_EXIT and seconds >= STALL_TIMEOUT - 1, (code, seconds, err[-2000:])
        assert re.search(STALL_MESSAGE, err), err[-2000:]
    net = ghostmlp.load(saved)
    assert net.epochs_trained >= 5 and net.epochs_trained % 5 == 0


@pytest.mark.parametrize("case", ["npy data", "checkpoint"])
def test_a_file_on_one_host_only_fails_every_rank_once(tmp_path, request, case):
    """.npy data that every rank memory-maps, or a checkpoint that every rank reads, only
    in h0's node-local folder: every rank raises the same error naming rank 1, host h1 and
    the file; rank 0 prints it once and the job exits 1 within seconds, without an abort."""
    cluster = make_cluster(tmp_path, request, 2, local=True)
    node, local = cluster.root / "nodes" / "h0", cluster.local_folder
    if case == "npy data":
        X = np.random.default_rng(0).normal(size=(40, 6))
        np.save(node / "X.npy", X)
        np.save(node / "y.npy", np.argmax(X[:, :3], axis=1))
        args = ["train", "--inputs", local / "X.npy", "--labels", local / "y.npy", *TRAIN]
        message = (rf"ghostmlp train: error: rank 1 of 2 \(host h1\): \[Errno 2\] No such file "
                   rf"or directory: '{local}/X.npy'")
    else:
        assert main(["train", "--epochs", "1", "--hidden", "8",
                                  "--checkpoint", str(node / "net.gmlp")]) == 0
        args = ["evaluate", "--checkpoint", local / "net.gmlp"]
        message = (rf"ghostmlp evaluate: error: {local}/net.gmlp: no such checkpoint file on "
                   r"rank 1 \(host h1\) of 2: the file must be visible to every rank")
    # `python -m ghostmlp`, as `ghostmlp` runs: `python -m mpi4py` aborts on any exit but 0
    code, out, err, seconds = cluster.run(
        cluster.mpiexec(mpiexec(), 2, [sys.executable, "-m", "ghostmlp", *map(str, args)]),
        timeout=LIMIT_SECONDS, cwd=cluster.shared, env=environment())
    assert code == 1, out[-2000:] + err[-2000:]
    assert len(re.findall(message, err)) == 1, err[-2000:]
    assert "Abort" not in out + err and seconds < 30, (seconds, err[-2000:])
