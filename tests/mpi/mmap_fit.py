"""`mmap_fit.py FOLDER`: every replica fits on a memory-mapped X (float32, in FOLDER) that, as
the network's float64, is larger than the memory the process may still allocate; exits
non-zero unless the fit runs and a whole copy of X would not have fitted."""
import sys

import numpy as np
from mpi4py import MPI

from ghostmlp import Network
from memory_cap import cap_below

comm = MPI.COMM_WORLD
X = np.load(f"{sys.argv[1]}/X.npy", mmap_mode="r")
y = np.load(f"{sys.argv[1]}/y.npy", mmap_mode="r")
net = Network(seed=0, dtype="float64", loss="cross_entropy", learning_rate=0.1, comm=comm,
              grid=(comm.Get_size(), 1))
net.add_layer("input", X.shape[1]).add_layer("hidden", 8).add_layer("output", 4).initialize()
net.train_step(np.zeros((256, X.shape[1])), np.zeros(256, dtype=np.int64))    # buffers now
copied = cap_below(X)
history = net.fit(X, y, max_epochs=1, batch_size=256)
ok = not copied and np.isfinite(history["loss"][0])
if not comm.allreduce(ok, op=MPI.LAND):
    sys.exit(f"rank {comm.Get_rank()}: copied={copied}, history={history}")
