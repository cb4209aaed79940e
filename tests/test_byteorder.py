"""Byte order: checkpoints written big-endian load here, big-endian inputs equal native ones."""
import json
import sys
from pathlib import Path

import numpy as np
import pytest

import ghostmlp
from ghostmlp import Network, checkpoint, formats
from ghostmlp.params import Parameters

import byteorder

S390X = Path(__file__).parent / "data" / "s390x"


def build(dtype="float64"):
    net = Network(seed=1, dtype=dtype, loss="cross_entropy", learning_rate=0.2, momentum=0.5)
    net.add_layer("input", 5).add_layer("hidden", 7).add_layer("output", 3)
    return net.initialize()


def data(n=24):
    rng = np.random.default_rng(5)
    return rng.normal(size=(n, 5)), rng.integers(0, 3, n)


def test_a_checkpoint_written_on_s390x_loads_with_its_weights_and_predictions():
    assert byteorder.check(S390X) == "big"


def test_a_checkpoint_written_here_loads_here(tmp_path):
    """The same files written on this machine; tools/bigendian_test.sh checks them across."""
    byteorder.write(tmp_path)
    assert byteorder.check(tmp_path) == sys.byteorder


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_save_writes_little_endian_from_big_endian_rows(tmp_path, monkeypatch, dtype):
    """A big-endian machine's arrays are big-endian: emulated here by handing save() rows in
    '>' order, which must land in the file as the same values, little-endian."""
    X, y = data()
    net = build(dtype)
    net.fit(X, y, max_epochs=2, batch_size=6)
    read_rows = Parameters.read_rows

    def big_endian_rows(self, *args, **kwargs):
        rows, bias = read_rows(self, *args, **kwargs)
        big = self.dtype.newbyteorder(">")
        return rows.astype(big), bias.astype(big)

    monkeypatch.setattr(Parameters, "read_rows", big_endian_rows)
    ghostmlp.save(net, tmp_path / "net.gmlp")
    monkeypatch.undo()
    header = checkpoint.read_header(tmp_path / "net.gmlp")
    entry = next(e for e in header["arrays"] if e["name"] == "layer1/weights_t")
    little = np.dtype(dtype).newbyteorder("<")
    assert entry["dtype"] == little.str
    raw = np.fromfile(tmp_path / "net.gmlp", dtype=little, count=35,
                      offset=header["data_start"] + entry["offset"])
    np.testing.assert_array_equal(raw.reshape(7, 5), net.get_weights()[0][0].T)
    loaded = ghostmlp.load(tmp_path / "net.gmlp")
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))


def test_a_checkpoint_declaring_big_endian_arrays_is_refused_not_misread(tmp_path):
    net = build()
    path = tmp_path / "net.gmlp"
    ghostmlp.save(net, path)
    raw = path.read_bytes()
    length = int.from_bytes(raw[16:24], "little")
    text = raw[24:24 + length].replace(b'"dtype": "<f8"', b'"dtype": ">f8"')
    assert text != raw[24:24 + length] and json.loads(text)
    path.write_bytes(raw[:24] + text + raw[24 + length:])
    with pytest.raises(ValueError, match=r"array layer1/weights_t is >f8 \[7, 5\], expected <f8"):
        ghostmlp.load(path)


@pytest.mark.parametrize("order", [">", "<"])
def test_inputs_and_labels_of_either_byte_order_train_identically(order):
    X, y = data()
    native, foreign = build(), build()
    native.fit(X, y, max_epochs=3, batch_size=5)
    foreign.fit(X.astype(order + "f8"), y.astype(order + "i4"), max_epochs=3, batch_size=5)
    for (w, b), (fw, fb) in zip(native.get_weights(), foreign.get_weights()):
        np.testing.assert_array_equal(fw, w)
        np.testing.assert_array_equal(fb, b)
    np.testing.assert_array_equal(native.predict_proba(X.astype(order + "f4")),
                                  native.predict_proba(X.astype("f4")))


@pytest.mark.parametrize("dtype", [">f8", ">f4", "<f4"])
def test_a_network_dtype_of_either_byte_order_names_a_native_precision(dtype):
    X, y = data()
    net = build(dtype)
    assert net.dtype == np.dtype(dtype).newbyteorder("=") and net.dtype.isnative
    net.fit(X, y, max_epochs=1, batch_size=8)
    assert net.predict_proba(X).dtype == net.dtype


@pytest.mark.parametrize("stored", [">f4", ">f8", ">i2", ">u4"])
@pytest.mark.parametrize("dtype", ["float32", ">f8"])
def test_big_endian_npy_and_npz_files_load_as_native_values(tmp_path, stored, dtype):
    X, y = data()
    values = (np.abs(X) * 100).astype(stored)
    np.save(tmp_path / "X.npy", values)
    np.savez(tmp_path / "Xy.npz", X=values, y=y.astype(">i8"))
    expected = values.astype(np.dtype(dtype).newbyteorder("="))
    for loaded in (formats.load(tmp_path / "X.npy", dtype=dtype),
                   formats.load(tmp_path / "Xy.npz", key="X", dtype=dtype)):
        assert loaded.dtype == expected.dtype and loaded.dtype.isnative
        np.testing.assert_array_equal(loaded, expected)
    labels = formats.load(tmp_path / "Xy.npz", "labels", key="y")
    assert labels.dtype == np.int64 and labels.dtype.isnative
    np.testing.assert_array_equal(labels, y)
