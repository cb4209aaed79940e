"""Checkpoints never lost (kill -9 mid-save, a full disk) and damaged headers refused before allocating."""
import json
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import ghostmlp
from ghostmlp import Network, checkpoint
from save_paused import POINTS
from test_checkpoint import build, data

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("point", POINTS)
def test_kill_9_during_a_save_keeps_a_loadable_checkpoint(tmp_path, point):
    """A save killed at `point` leaves the previous checkpoint, byte for byte, until the
    rename; from the rename on, the new one. A later save replaces the leftover temporary."""
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    before = path.read_bytes()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]))
    child = subprocess.Popen([sys.executable, str(HERE / "save_paused.py"), str(path), point],
                             stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert child.stdout.readline().strip() == point
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        child.kill()
        child.stdout.close()
    loaded = ghostmlp.load(path)
    if point == "renamed":
        assert loaded.epochs_trained == 1 and not (tmp_path / "net.gmlp.tmp").exists()
    else:
        assert path.read_bytes() == before and loaded.epochs_trained == 0
    net = build()
    net.fit(*data(), max_epochs=2, batch_size=8)
    ghostmlp.save(net, path)
    assert ghostmlp.load(path).epochs_trained == 2 and not (tmp_path / "net.gmlp.tmp").exists()


def test_a_full_disk_keeps_the_previous_checkpoint(tmpfs):
    small_disk = tmpfs("size=2m")
    path = small_disk / "net.gmlp"
    ghostmlp.save(build(), path)
    before = path.read_bytes()
    big = Network(seed=0, dtype="float64", momentum=0.5, learning_rate=0.1)   # 2.6 MB to write
    big.add_layer("input", 5).add_layer("hidden", 400).add_layer("hidden", 400)
    big.add_layer("output", 4).initialize()
    with pytest.raises(OSError, match=f"^{path}: checkpoint not saved \\(any previous checkpoint "
                                      r"there is unchanged\): .*No space left on device"):
        ghostmlp.save(big, path)
    assert path.read_bytes() == before and ghostmlp.load(path).epochs_trained == 0
    assert os.listdir(small_disk) == ["net.gmlp"]          # the temporary is gone


def edited(path, edit):
    """A copy of the checkpoint at `path` whose header is edit(header), its arrays kept."""
    header = checkpoint.read_header(path)
    raw = path.read_bytes()
    arrays = raw[header.pop("data_start"):]
    edit(header)
    text = json.dumps(header).encode()
    start = checkpoint._data_start(len(text))
    bad = path.with_name("edited.gmlp")
    bad.write_bytes((checkpoint.MAGIC + checkpoint.VERSION.to_bytes(8, "little")
                     + len(text).to_bytes(8, "little") + text).ljust(start, b" ") + arrays)
    return bad


def huge_layer(header):
    header["network"]["layers"][1][1] = 10**9          # 96 GB of weights


def huge_array(header):
    header["arrays"][0]["shape"] = [10**6, 10**6]


@pytest.mark.parametrize("edit, message", [
    (huge_layer, r"the layers \[5, 1000000000, 7, 4\] need 96000000224 bytes of "
                 r"weights, the file holds \d+: truncated or damaged"),
    (huge_array, r"array layer1/weights_t declares <f8 \[1000000, 1000000\], ending "
                 r"8000000000000 bytes into the data, but the file holds \d+"),
    (lambda header: header["arrays"][2].update(dtype="<f99"),
     "the checkpoint header names an unknown dtype '<f99'"),
    (lambda header: header["arrays"][2].update(dtype="(f8,"),        # found by tools/fuzz.py
     r"the checkpoint header names an unknown dtype '\(f8,'"),
    (lambda header: header["arrays"][1].update(shape=[-5]),
     r"array layer1/bias has shape \[-5\] at offset \d+: not a valid extent"),
])
def test_shapes_larger_than_the_file_are_refused_before_allocating(tmp_path, edit, message):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    bad = edited(path, edit)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        for read in (ghostmlp.load, checkpoint.read_header):
            with pytest.raises(ValueError, match=f"^{bad}: {message}"):
                read(bad)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20 and time.perf_counter() - started < 2


def test_a_header_length_beyond_the_file_is_refused_before_allocating(tmp_path):
    path = tmp_path / "net.gmlp"
    ghostmlp.save(build(), path)
    raw = bytearray(path.read_bytes())
    raw[16:24] = (1 << 60).to_bytes(8, "little")
    path.write_bytes(raw)
    with pytest.raises(ValueError, match=f"^{path}: the checkpoint header claims "
                                         f"{1 << 60} bytes, the file has {len(raw)}"):
        ghostmlp.load(path)
