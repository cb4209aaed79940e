"""`mmap_train.py FOLDER`: `ghostmlp train` on .npy files in FOLDER (X float32) that, as the
network's float64, are larger than the memory each rank may still allocate: every rank
memory-maps them, standardises and evaluates by rows; exits non-zero unless training ran
and a whole float64 copy of X would not have fitted."""
import sys

import numpy as np
from mpi4py import MPI

from ghostmlp.cli import main
from memory_cap import cap_below

folder = sys.argv[1]
X = np.load(f"{folder}/X.npy", mmap_mode="r")
copied = cap_below(X)
code = main(["train", "--inputs", f"{folder}/X.npy", "--labels", f"{folder}/y.npy",
             "--epochs", "1", "--hidden", "8", "--dtype", "float64", "--batch-size", "256",
             "--validation-fraction", "0.05", "--checkpoint", f"{folder}/net.gmlp"])
ok = code == 0 and not copied
if not MPI.COMM_WORLD.allreduce(ok, op=MPI.LAND):
    sys.exit(f"rank {MPI.COMM_WORLD.Get_rank()}: exit {code}, copied={copied}")
