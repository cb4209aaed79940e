"""`save_big.py PATH [RANK]`: every rank saves a 2.6 MB network (5-400-400-4, float64, SGD
with momentum) to PATH collectively; with RANK, that rank's writes fail as on a full disk
while the others' succeed. A rank whose save fails prints `rank R: ERROR` and exits 1."""
import errno
import sys

from mpi4py import MPI

import ghostmlp
from ghostmlp import Network, checkpoint

comm = MPI.COMM_WORLD
if len(sys.argv) > 2 and comm.Get_rank() == int(sys.argv[2]):
    def full_disk(self, offset, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    checkpoint._MPIFile.write_at = full_disk
net = Network(seed=0, dtype="float64", momentum=0.5, learning_rate=0.1, comm=comm)
net.add_layer("input", 5).add_layer("hidden", 400).add_layer("hidden", 400)
net.add_layer("output", 4).initialize()
try:
    ghostmlp.save(net, sys.argv[1])
except OSError as error:
    print(f"rank {comm.Get_rank()}: {error}", flush=True)
    sys.exit(1)
