"""`stop_in_allgather.py ARGS...`: `ghostmlp ARGS` on every rank, rank 1 stopping itself
(SIGSTOP) at its first gather of a layer's outputs, so that the others wait for it there."""
import os
import signal
import sys

from mpi4py import MPI

from ghostmlp import exchange
from ghostmlp.cli import main

if MPI.COMM_WORLD.Get_rank() == 1:
    def stop(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGSTOP)

    exchange.Exchange.allgather_rows = stop
sys.exit(main(sys.argv[1:]))
