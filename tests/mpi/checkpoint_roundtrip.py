"""`save DIR` trains and checkpoints dense and ghost networks on this job's ranks; `load DIR`
loads them on this job's ranks and exits non-zero unless the predictions are identical (the
classes exactly, the probabilities to rounding: BLAS sums a layer's slices in another order)."""
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import ghostmlp
from ghostmlp import Network

comm = MPI.COMM_WORLD
LAYOUTS = {"dense": {}, "ghost": {"connectivity": "ghost", "blocks": 6}}   # 6: 1, 2 and 3 ranks


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 7)), rng.integers(0, 6, 12)


def save(folder):
    X, y = data()
    for name, layout in LAYOUTS.items():
        net = Network(seed=5, dtype="float64", loss="cross_entropy", learning_rate=0.3,
                      momentum=0.5, comm=comm, **layout)
        net.add_layer("input", 7).add_layer("hidden", 13).add_layer("hidden", 11)
        net.add_layer("output", 6).initialize()
        net.fit(X, y, epochs=2, batch_size=5)
        ghostmlp.save(net, folder / f"{name}.gmlp")
        predictions = net.predict_proba(X)
        if comm.Get_rank() == 0:
            np.save(folder / f"{name}.npy", predictions)


def load(folder):
    X, _ = data()
    ok = True
    for name in LAYOUTS:
        net = ghostmlp.load(folder / f"{name}.gmlp", comm=comm)
        proba, saved = net.predict_proba(X), np.load(folder / f"{name}.npy")
        ok &= bool(np.allclose(proba, saved, rtol=1e-12, atol=1e-15))
        ok &= bool(np.array_equal(proba.argmax(axis=1), saved.argmax(axis=1)))
        ok &= net.epochs_trained == 2
    return comm.allreduce(ok, op=MPI.LAND)


if __name__ == "__main__":
    folder = Path(sys.argv[2])
    if sys.argv[1] == "save":
        save(folder)
    elif not load(folder):
        sys.exit(f"rank {comm.Get_rank()}: predictions differ after loading on {comm.Get_size()} ranks")
