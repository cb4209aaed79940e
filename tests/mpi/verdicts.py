"""Verdicts of the MPI cases: allreduced, so that every rank passes or fails together."""
import numpy as np
from mpi4py import MPI

comm = MPI.COMM_WORLD


def everywhere(ok, what):
    """Assert on every rank that `ok` held on every rank."""
    flags = comm.allgather(bool(ok))
    assert all(flags), f"{what}: failed on ranks {[r for r, f in enumerate(flags) if not f]}"


def close(a, b, rtol=1e-10, atol=1e-12):
    return np.allclose(a, b, rtol=rtol, atol=atol)


def same_weights(a, b):
    """[(W, b)] pairs close, pair by pair."""
    return all(close(wa, wb) and close(ba, bb) for (wa, ba), (wb, bb) in zip(a, b))
