"""Rank 1 fails while the others wait in a barrier, for tests/test_cli.py."""
from mpi4py import MPI

from ghostmlp.cli_agree import fail

comm = MPI.COMM_WORLD
agreement = comm.Dup()
if comm.Get_rank() == 1:
    fail("ghostmlp: error: only rank 1 sees this", agreement, agree_seconds=1)
comm.Barrier()
