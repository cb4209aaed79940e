"""Checkpoints and binary files written on one machine, checked on another of either byte order.

    python tests/byteorder.py write DIR    train two small networks (float32, float64); write
                                           DIR/inputs.npy (explicitly big-endian '>f8') and, for
                                           each dtype, DIR/<dtype>.gmlp, DIR/<dtype>_weights.npz
                                           and DIR/<dtype>_predictions.npy (this machine's order)
    python tests/byteorder.py check DIR    load them here; exit 1 unless every weight is equal
                                           bit for bit and the predictions agree

tests/data/s390x/ was written on s390x (big-endian, under qemu) in the root of
tools/s390x_root.sh with the wheel of tools/cross_wheel.sh s390x unpacked in /opt/gm there:
`chroot ROOT env PYTHONPATH=/opt/gm python3 tests/byteorder.py write tests/data/s390x`,
from a copy of tests/ in the root (docs/bluegene.md).
"""
import platform
import sys
from pathlib import Path

import numpy as np

import ghostmlp
from ghostmlp import Network, formats

DTYPES = ("float32", "float64")
# Predicted probabilities from the same weights on two machines differ only in the rounding
# of their BLAS and libm: a few units in the last place.
RTOL = {"float32": 1e-5, "float64": 1e-12}


def _network(dtype):
    net = Network(seed=3, dtype=dtype, loss="cross_entropy", learning_rate=0.3, momentum=0.5)
    net.add_layer("input", 6).add_layer("hidden", 8, activation="tanh").add_layer("output", 3)
    return net.initialize()


def _data():
    rng = np.random.default_rng(11)
    return rng.normal(size=(16, 6)), rng.integers(0, 3, 16)


def write(folder):
    """Train and write the files that check() reads, in `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    X, y = _data()
    np.save(folder / "inputs.npy", X.astype(">f8"))
    for dtype in DTYPES:
        net = _network(dtype)
        net.fit(X, y, max_epochs=3, batch_size=4)
        ghostmlp.save(net, folder / f"{dtype}.gmlp",
                      extra={"byteorder": sys.byteorder, "machine": platform.machine()})
        np.savez(folder / f"{dtype}_weights.npz",
                 **{f"{kind}{i}": a for i, pair in enumerate(net.get_weights())
                    for kind, a in zip("wb", pair)})
        np.save(folder / f"{dtype}_predictions.npy", net.predict_proba(X))


def check(folder):
    """Assert that the checkpoints in `folder` load here with the writer's exact weights, as
    native arrays, and predict what the writer predicted; returns the writer's byte order."""
    folder = Path(folder)
    X = formats.load(folder / "inputs.npy")
    assert X.dtype == np.dtype("float64") and X.dtype.isnative
    written_on = set()
    for dtype in DTYPES:
        net = ghostmlp.load(folder / f"{dtype}.gmlp")
        written_on.add(ghostmlp.checkpoint.read_header(folder / f"{dtype}.gmlp")["extra"]["byteorder"])
        with np.load(folder / f"{dtype}_weights.npz") as saved:
            for i, (w, b) in enumerate(net.get_weights()):
                assert w.dtype == np.dtype(dtype) and w.dtype.isnative
                np.testing.assert_array_equal(w, saved[f"w{i}"])
                np.testing.assert_array_equal(b, saved[f"b{i}"])
        expected = np.load(folder / f"{dtype}_predictions.npy")
        proba = net.predict_proba(X)
        np.testing.assert_allclose(proba, expected, rtol=RTOL[dtype], atol=0)
        np.testing.assert_array_equal(proba.argmax(axis=1), expected.argmax(axis=1))
    (byteorder,) = written_on
    return byteorder


if __name__ == "__main__":
    command, folder = sys.argv[1:]
    if command == "write":
        write(folder)
    else:
        print(f"ok: {folder}, written on a {check(folder)}-endian machine, loads on this "
              f"{sys.byteorder}-endian {platform.machine()} with the same weights and predictions")
