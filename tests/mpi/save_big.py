"""`save_big.py PATH`: every rank saves a 2.6 MB network (5-400-400-4, float64, SGD with
momentum) to PATH collectively; a rank whose save fails prints `rank R: ERROR` and exits 1."""
import sys

from mpi4py import MPI

import ghostmlp
from ghostmlp import Network

comm = MPI.COMM_WORLD
net = Network(seed=0, dtype="float64", momentum=0.5, learning_rate=0.1, comm=comm)
net.add_layer("input", 5).add_layer("hidden", 400).add_layer("hidden", 400)
net.add_layer("output", 4).initialize()
try:
    ghostmlp.save(net, sys.argv[1])
except OSError as error:
    print(f"rank {comm.Get_rank()}: {error}", flush=True)
    sys.exit(1)
