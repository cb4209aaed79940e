"""Checkpoints: exact round trips, explicit byte order, checksums, atomic writes, exact resume."""
import json

import numpy as np
import pytest

import ghostmlp
from ghostmlp import Network, checkpoint


def build(dtype="float64", momentum=0.5, **options):
    net = Network(seed=2, dtype=dtype, loss="cross_entropy", learning_rate=0.2,
                  momentum=momentum, weight_decay=1e-3, **options)
    net.add_layer("input", 5).add_layer("hidden", 9).add_layer("hidden", 7, activation="tanh")
    net.add_layer("output", 4)
    return net.initialize()


def data(n=40, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 5)), rng.integers(0, 4, n)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_round_trip_is_exact(tmp_path, dtype, momentum):
    X, y = data()
    net = build(dtype, momentum)
    net.fit(X, y, max_epochs=2, batch_size=8)
    path = tmp_path / "net.gmlp"
    ghostmlp.save(net, path, extra={"note": "round trip"})
    loaded = ghostmlp.load(path)
    assert repr(loaded) == repr(net)
    assert (loaded.epochs_trained, loaded.steps_trained) == (2, 10)
    for (w, b), (lw, lb) in zip(net.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(w, lw)
        np.testing.assert_array_equal(b, lb)
    np.testing.assert_array_equal(loaded.predict_proba(X), net.predict_proba(X))
    assert checkpoint.read_header(path)["extra"] == {"note": "round trip"}
    assert not (tmp_path / "net.gmlp.tmp").exists()


def test_arrays_are_little_endian_rows_of_w_transposed(tmp_path):
    net = build("float64")
    path = tmp_path / "net.gmlp"
    ghostmlp.save(net, path)
    header = checkpoint.read_header(path)
    entry = next(e for e in header["arrays"] if e["name"] == "layer2/weights_t")
    assert entry["dtype"] == "<f8" and entry["shape"] == [7, 9]
    raw = np.fromfile(path, dtype="<f8", count=63, offset=header["data_start"] + entry["offset"])
    np.testing.assert_array_equal(raw.reshape(7, 9), net.get_weights()[1][0].T)
    assert {e["name"] for e in header["arrays"]} >= {"layer1/momentum_buffer_t", "layer3/momentum_buffer_bias"}


def test_resume_equals_an_uninterrupted_run(tmp_path):
    X, y = data(50)
    straight = build()
    straight.fit(X, y, max_epochs=6, batch_size=7)
    first = build()
    first.fit(X, y, max_epochs=3, batch_size=7)
    ghostmlp.save(first, tmp_path / "half.gmlp")
    resumed = ghostmlp.load(tmp_path / "half.gmlp")
    resumed.fit(X, y, max_epochs=3, batch_size=7)
    assert resumed.epochs_trained == 6
    for (w, b), (rw, rb) in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(rw, w, rtol=1e-12, atol=0)
        np.testing.assert_allclose(rb, b, rtol=1e-12, atol=0)


def test_damage_is_detected(tmp_path):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    data_start = checkpoint.read_header(path)["data_start"]
    content = bytearray(path.read_bytes())
    content[data_start + 100] ^= 0x40
    (tmp_path / "flipped.gmlp").write_bytes(content)
    with pytest.raises(ValueError, match=r"flipped.gmlp: array layer\d/\w+ fails its checksum"):
        ghostmlp.load(tmp_path / "flipped.gmlp")
    (tmp_path / "short.gmlp").write_bytes(path.read_bytes()[:data_start + 50])
    with pytest.raises(ValueError, match="short.gmlp"):
        ghostmlp.load(tmp_path / "short.gmlp")
    (tmp_path / "other.gmlp").write_bytes(b"PK\x03\x04" + bytes(100))
    with pytest.raises(ValueError, match="other.gmlp: not a ghostmlp checkpoint"):
        ghostmlp.load(tmp_path / "other.gmlp")


def test_a_crash_mid_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    X, y = data()
    path = tmp_path / "net.gmlp"
    net = build()
    ghostmlp.save(net, path)
    before = path.read_bytes()
    net.fit(X, y, max_epochs=1, batch_size=8)
    calls = []

    def failing_write(self, offset, block):
        calls.append(offset)
        if len(calls) > 2:
            raise OSError("disk full")
        original(self, offset, block)

    original = checkpoint._LocalFile.write_at
    monkeypatch.setattr(checkpoint._LocalFile, "write_at", failing_write)
    with pytest.raises(OSError, match="disk full"):
        ghostmlp.save(net, path)
    assert path.read_bytes() == before
    assert ghostmlp.load(path).epochs_trained == 0


def test_header_is_plain_json_and_layouts_are_checked(tmp_path):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    raw = path.read_bytes()
    length = int.from_bytes(raw[16:24], "little")
    header = json.loads(raw[24:24 + length])
    assert header["network"]["layers"][1] == ["hidden", 9, "relu"]
    assert header["network"]["connectivity"] == "dense" and header["byte_order"] == "little"
    with pytest.raises(ValueError, match="dense checkpoint cannot be loaded as a ghost network"):
        ghostmlp.load(path, connectivity="ghost")


def with_header(path, edit, version=checkpoint.VERSION):
    """A copy of the checkpoint at `path` whose header is edit(header) (arrays dropped:
    these files are refused before any is read)."""
    raw = path.read_bytes()
    header = json.loads(raw[24:24 + int.from_bytes(raw[16:24], "little")])
    edit(header)
    text = json.dumps(header).encode()
    bad = path.with_name("edited.gmlp")
    bad.write_bytes(checkpoint.MAGIC + version.to_bytes(8, "little")
                    + len(text).to_bytes(8, "little") + text)
    return bad


def rename(section, old, new):
    def edit(header):
        header[section][new] = header[section].pop(old)
    return edit


def setting(field, value):
    def edit(header):
        *parents, last = field.split(".")
        target = header
        for key in parents:
            target = target[key]
        target[last] = value
    return edit


@pytest.mark.parametrize("edit, message", [
    (rename("network", "layers", "layer_list"), "lacks the field 'network.layers'"),
    (lambda header: header.pop("state"), "lacks the field 'state'"),
    (rename("state", "epochs_trained", "epochs"), "lacks the field 'state.epochs_trained'"),
    (setting("network.seed", "2"), "field 'network.seed' must be an integer, got '2'"),
    (setting("state.steps_trained", True), "field 'state.steps_trained' must be an integer"),
    (setting("network.blocks", 2.5), "field 'network.blocks' must be an integer or null"),
    (setting("network.layers", {"input": 5}), "field 'network.layers' must be a list"),
    (setting("network.optimizer", "sgd"), "field 'network.optimizer' must be an object"),
    (lambda header: header["arrays"][3].pop("offset"), r"lacks the field arrays\[3\].offset"),
    (lambda header: header["arrays"][0].update(shape="9x5"),
     r"field 'arrays\[0\].shape' must be a list"),
    (lambda header: header["network"]["layers"][1].pop(),
     r"network.layers\[1\] must be \[kind, size, activation\], got \['hidden', 9\]"),
])
def test_a_malformed_header_names_the_field_and_the_file(tmp_path, edit, message):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    bad = with_header(path, edit)
    for read in (ghostmlp.load, checkpoint.read_header):
        with pytest.raises(ValueError, match=message) as error:
            read(bad)
        assert str(error.value).startswith(f"{bad}: ")


def test_a_newer_format_version_is_refused(tmp_path):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    bad = with_header(path, lambda header: None, version=checkpoint.VERSION + 1)
    with pytest.raises(ValueError, match=f"{bad}: checkpoint format version "
                       f"{checkpoint.VERSION + 1} comes from a newer ghostmlp; this one reads "
                       f"version {checkpoint.VERSION}: upgrade ghostmlp"):
        ghostmlp.load(bad)
