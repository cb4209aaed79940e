"""Checkpoint cases under mpiexec: round trips on this job's ranks, and failures that reach every rank."""
import os
import tempfile

import numpy as np
import pytest
from mpi4py import MPI

import ghostmlp
from ghostmlp import Network

comm = MPI.COMM_WORLD


def everywhere(ok, what):
    flags = comm.allgather(bool(ok))
    assert all(flags), f"{what}: failed on ranks {[r for r, f in enumerate(flags) if not f]}"


@pytest.fixture
def folder():
    """One temporary folder, the same on every rank."""
    path = comm.bcast(tempfile.mkdtemp() if comm.Get_rank() == 0 else None)
    yield path
    comm.Barrier()


def network(**layout):
    net = Network(seed=1, dtype="float64", momentum=0.3, comm=comm, **layout)
    net.add_layer("input", 5).add_layer("hidden", 12).add_layer("output", 12)
    return net.initialize()


def raised(action):
    try:
        action()
    except (OSError, ValueError) as error:
        return str(error)
    return None


@pytest.mark.parametrize("layout", [{}, {"connectivity": "ghost", "blocks": 12}])
def test_round_trip_on_this_job_and_on_one_rank(folder, layout):
    X = np.random.default_rng(0).normal(size=(6, 5))
    net = network(**layout)
    net.train_step(X, np.arange(6))
    path = os.path.join(folder, "net.gmlp")
    ghostmlp.save(net, path)
    expected = net.predict_proba(X)
    same = ghostmlp.load(path, comm=comm).predict_proba(X)
    alone = ghostmlp.load(path).predict_proba(X)              # every rank on its own
    everywhere(np.allclose(same, expected, rtol=1e-12) and np.allclose(alone, expected, rtol=1e-12),
               "predictions after loading")


def test_a_truncated_checkpoint_fails_on_every_rank(folder):
    path = os.path.join(folder, "net.gmlp")
    ghostmlp.save(network(), path)
    if comm.Get_rank() == 0:
        os.truncate(path, os.path.getsize(path) - 8)
    comm.Barrier()
    message = raised(lambda: ghostmlp.load(path, comm=comm))
    everywhere(message and "net.gmlp" in message and "truncated" in message, message)


def test_saving_onto_a_folder_fails_on_every_rank(folder):
    target = os.path.join(folder, "taken")
    if comm.Get_rank() == 0:
        os.mkdir(target)
    comm.Barrier()
    message = raised(lambda: ghostmlp.save(network(), target))
    everywhere(message and "taken" in message, message)


def test_a_missing_checkpoint_is_named(folder):
    message = raised(lambda: ghostmlp.load(os.path.join(folder, "absent.gmlp"), comm=comm))
    everywhere(message and "absent.gmlp: no such checkpoint file" in message, message)
