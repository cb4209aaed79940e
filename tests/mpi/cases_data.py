"""read_on_root cases, run on every rank under mpiexec by tests/test_mpi.py; verdicts allreduced."""
import tempfile
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from ghostmlp.broadcast import read_on_root
from ghostmlp.formats import load, load_text

comm = MPI.COMM_WORLD
rank = comm.Get_rank()


def everywhere(ok, what):
    """Assert on every rank that `ok` held on every rank."""
    flags = comm.allgather(bool(ok))
    assert all(flags), f"{what}: failed on ranks {[r for r, f in enumerate(flags) if not f]}"


@pytest.fixture
def folder():
    """A fresh folder on rank 0 only (other ranks get a path that does not exist)."""
    if rank == 0:
        with tempfile.TemporaryDirectory() as name:
            yield Path(name)
    else:
        yield Path("/nonexistent/only-rank-0-reads")


def outcome(read):
    """(result, None) or (None, exception) of read_on_root(read, comm): every rank reaches the verdict."""
    try:
        return read_on_root(read, comm), None
    except Exception as error:
        return None, error


def counted(read):
    calls = []

    def wrapper():
        calls.append(rank)
        return read()
    return wrapper, calls


def test_every_rank_gets_the_arrays_read_on_rank_0(folder):
    X = np.random.default_rng(0).normal(size=(17, 5))
    if rank == 0:
        np.savetxt(folder / "inputs.txt", X, fmt="%.17g")
        (folder / "labels.txt").write_text("0 0 1\n1 0 0\n0 1 0\n")
    read, calls = counted(lambda: (load_text(folder / "inputs.txt", dtype="float32"),
                                   load(folder / "labels.txt", role="labels")))
    got, error = outcome(read)
    everywhere(error is None, f"no error (got {error!r})")
    everywhere(calls == ([0] if rank == 0 else []), "read() called on rank 0 only")
    inputs, labels = got
    everywhere(isinstance(got, tuple) and len(got) == 2, "a tuple of two arrays")
    everywhere(inputs.dtype == np.float32 and np.array_equal(inputs, X.astype(np.float32)), "inputs")
    everywhere(labels.dtype == np.int64 and np.array_equal(labels, [2, 0, 1]), "labels")
    digests = comm.allgather(inputs.tobytes() + labels.tobytes())
    everywhere(all(d == digests[0] for d in digests), "identical bytes on every rank")


def test_any_shapes_and_dtypes_arrive_intact():
    rng = np.random.default_rng(1)
    sent = (rng.normal(size=(3, 4, 2)), np.arange(7, dtype=np.int16)[::2], np.zeros((0, 5), np.float32),
            np.float64(2.5), ["seven", "one"], np.array([True, False]), np.asfortranarray(np.eye(3, 2)),
            np.frombuffer(b"read-only", np.uint8), np.broadcast_to(np.arange(3.0), (4, 3)))
    got, error = outcome(lambda: tuple(sent))
    everywhere(error is None, f"no error (got {error!r})")
    expected = [np.asarray(a) for a in sent]
    everywhere(len(got) == len(expected) and all(
        isinstance(g, np.ndarray) and g.dtype == e.dtype and g.shape == e.shape
        and np.array_equal(g, e)
        for g, e in zip(got, expected)), "shapes, dtypes and values")


def test_one_array_stays_one_array():
    expected = np.arange(1000.0).reshape(10, 100)
    got, _ = outcome(lambda: expected)
    everywhere(isinstance(got, np.ndarray) and np.array_equal(got, expected), "a single array")


def test_a_bad_file_raises_the_same_error_on_every_rank(folder):
    if rank == 0:
        (folder / "bad.txt").write_text("1 2\n3 x\n")
    _, error = outcome(lambda: load_text(folder / "bad.txt"))
    everywhere(type(error) is ValueError, f"ValueError (got {error!r})")
    everywhere("bad.txt, line 2: non-numeric token 'x'" in str(error), "file and line in the message")
    messages = comm.allgather(str(error))
    everywhere(len(set(messages)) == 1, "the same message on every rank")


def test_a_missing_file_raises_file_not_found_on_every_rank(folder):
    _, error = outcome(lambda: load_text(folder / "missing.txt"))
    everywhere(type(error) is FileNotFoundError, f"FileNotFoundError (got {error!r})")
    everywhere("missing.txt" in str(error), "file name in the message")


@pytest.mark.parametrize("read, match", [
    (lambda: {}["inputs"], "KeyError: 'inputs'"),
    (lambda: [np.zeros(2)], "must return a numpy array or a tuple, got list"),
    (lambda: (np.zeros(2), {"a": 1}), "not Python objects"),
])
def test_other_failures_become_value_errors_on_every_rank(read, match):
    _, error = outcome(read)
    everywhere(type(error) is ValueError and match in str(error),
               f"ValueError with {match!r} (got {error!r})")


def test_the_communicator_still_works_after_a_failure():
    outcome(lambda: 1 / 0)
    got, error = outcome(lambda: np.full(3, comm.Get_size()))
    everywhere(error is None and np.array_equal(got, [comm.Get_size()] * 3), "a read after a failure")


def test_comm_self_and_none_read_locally():
    got = read_on_root(lambda: np.full(2, rank), MPI.COMM_SELF)
    everywhere(np.array_equal(got, [rank, rank]), "COMM_SELF: every rank reads its own")
    everywhere(np.array_equal(read_on_root(lambda: np.full(2, rank)), [rank, rank]), "comm=None")
