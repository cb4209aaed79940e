"""The step's exchanges from compiled code, on one process (COMM_SELF: a ring of one rank
sends its halo to itself): the rows they move, what the exchange counts, MPI's errors."""
import numpy as np
import pytest
from mpi4py import MPI

from ghostmlp import _kernels
from ghostmlp.exchange import (COMPILED_ENTRY_POINTS, WAIT_NAMES, CompiledRequests,
                               Exchange)

pytestmark = pytest.mark.skipif(COMPILED_ENTRY_POINTS is None,
                                reason="this MPI library exports no MPI_Startall to compiled code")


def halo_on_one_rank():
    ex = Exchange(MPI.COMM_SELF, stall_timeout=0)
    rows = np.arange(12, dtype=np.float32).reshape(4, 3)    # ghostTop, 2 own rows, ghostBottom
    persistent = ex.halo(rows)
    return ex, rows, persistent, CompiledRequests(persistent, "halo wait",
                                                  np.zeros(3, np.int64), COMPILED_ENTRY_POINTS)


def test_a_compiled_halo_moves_the_rows_and_is_counted():
    ex, rows, persistent, compiled = halo_on_one_rank()
    own = rows[1:3].copy()
    ex.reset_counters()
    assert _kernels.run_requests(compiled, 3) == 0
    # its own neighbour: ghostTop := its last own row, ghostBottom := its first
    np.testing.assert_array_equal(rows[0], own[1])
    np.testing.assert_array_equal(rows[3], own[0])
    assert compiled.inflight.tolist() == [3, 0, -1]         # 3 waits begun, none in flight
    ex._count_persistent()
    assert (ex.messages, ex.bytes) == (3 * 2, 3 * 2 * 3 * 4)
    assert ex.seconds > 0 and persistent.tally.tolist() == [0.0, 0.0]
    assert compiled.handles.dtype.itemsize == MPI._sizeof(MPI.Request)
    assert WAIT_NAMES[compiled.op - 1] == "halo wait"
    persistent.free()


def test_an_error_of_mpi_in_compiled_code_is_raised_as_mpi_s():
    """Starting requests that are still active is an error MPI reports (MPI_ERR_REQUEST):
    its code comes back from compiled code and the exchange raises it."""
    ex, _, persistent, compiled = halo_on_one_rank()
    MPI.Prequest.Startall(persistent.requests)              # active until waited for
    error = _kernels.run_requests(compiled)
    MPI.Request.Waitall(persistent.requests)
    assert error != 0
    with pytest.raises(MPI.Exception) as raised:
        ex.failed(error)
    assert raised.value.Get_error_class() == MPI.ERR_REQUEST
    assert _kernels.run_requests(compiled) == 0             # inactive again: fine
    persistent.free()


def test_run_requests_needs_requests():
    with pytest.raises(ValueError, match="needs requests"):
        _kernels.run_requests(None)


def test_persistent_collectives_are_found_by_asking_the_library():
    """A library that reports MPI 3.1 but has them (Open MPI 5) is asked on COMM_SELF; one
    without them runs blocking collectives."""
    from ghostmlp import exchange

    class Without:
        def Allgatherv_init(self, *args):
            raise NotImplementedError("MPI_Allgatherv_init")

    assert exchange._persistent_collectives((4, 0), Without())
    assert exchange._persistent_collectives((3, 1), MPI.COMM_SELF)
    assert not exchange._persistent_collectives((3, 1), Without())
