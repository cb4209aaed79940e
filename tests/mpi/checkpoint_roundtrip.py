"""`save DIR` trains and checkpoints dense and ghost networks on this job's ranks; `load DIR`
loads them on this job's ranks and exits non-zero unless the predictions are identical (the
classes exactly, the probabilities to rounding: BLAS sums a layer's slices in another order),
and so are those after one more epoch (the optimizer's state and step count came along)."""
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import ghostmlp
from ghostmlp import Network
from ghostmlp.optim import SGD, Adam

comm = MPI.COMM_WORLD
GHOST = {"connectivity": "ghost", "blocks": 6}      # 6 blocks: 1, 2 and 3 ranks
LAYOUTS = {"dense": ({}, lambda: SGD(0.3, momentum=0.5)),
           "ghost": (GHOST, lambda: SGD(0.3, momentum=0.5)),
           "adam-dense": ({}, lambda: Adam(0.01, weight_decay=1e-3)),
           "adam-ghost": (GHOST, lambda: Adam(0.01, weight_decay=1e-3))}


def data():
    rng = np.random.default_rng(0)
    return rng.normal(size=(12, 7)), rng.integers(0, 6, 12)


def save(folder):
    X, y = data()
    for name, (layout, optimizer) in LAYOUTS.items():
        net = Network(seed=5, dtype="float64", loss="cross_entropy", optimizer=optimizer(),
                      comm=comm, **layout)
        net.add_layer("input", 7).add_layer("hidden", 13).add_layer("hidden", 11)
        net.add_layer("output", 6).initialize()
        net.fit(X, y, max_epochs=2, batch_size=5)
        ghostmlp.save(net, folder / f"{name}.gmlp")
        predictions = net.predict_proba(X)
        net.fit(X, y, max_epochs=1, batch_size=5)
        later = net.predict_proba(X)
        if comm.Get_rank() == 0:
            np.save(folder / f"{name}.npy", predictions)
            np.save(folder / f"{name}-next.npy", later)


def load(folder):
    X, y = data()
    ok = True
    for name in LAYOUTS:
        net = ghostmlp.load(folder / f"{name}.gmlp", comm=comm)
        proba, saved = net.predict_proba(X), np.load(folder / f"{name}.npy")
        ok &= bool(np.allclose(proba, saved, rtol=1e-12, atol=1e-15))
        ok &= bool(np.array_equal(proba.argmax(axis=1), saved.argmax(axis=1)))
        ok &= net.epochs_trained == 2 and net.steps_trained == 6
        net.fit(X, y, max_epochs=1, batch_size=5)
        ok &= bool(np.allclose(net.predict_proba(X), np.load(folder / f"{name}-next.npy"),
                               rtol=1e-10, atol=1e-13))
    return comm.allreduce(ok, op=MPI.LAND)


if __name__ == "__main__":
    folder = Path(sys.argv[2])
    if sys.argv[1] == "save":
        save(folder)
    elif not load(folder):
        sys.exit(f"rank {comm.Get_rank()}: predictions differ after loading on {comm.Get_size()} ranks")
