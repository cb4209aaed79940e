"""Fuzzes ghostmlp's file readers: mutated files of every format, only the documented errors may escape.

    python tools/fuzz.py --seconds 300 [--seed 0] [--memory-gib 4]

The readers are ghostmlp.formats.load (text, CSV, .npy, .npz, IDX, gzipped text), as inputs
and as labels, and ghostmlp.checkpoint.load. Each input is a valid file of one format with
a few edits (bytes overwritten, the file cut short, bytes inserted) or random bytes; a
reader may return or raise ValueError or OSError (the documented errors: a ValueError
naming the file, an OSError for a file it cannot open), nothing else, and within
HANG_SECONDS. Memory is capped (RLIMIT_AS) so that a reader believing a damaged size
fails with MemoryError, reported, instead of exhausting the machine. The current input is
kept in last_input.* beside the run's folder, so that a crash of the interpreter leaves
it. tests/test_fuzz.py runs the same inputs, fewer, under hypothesis.
"""
import argparse
import contextlib
import gzip
import io
import json
import os
import random
import resource
import signal
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

DOCUMENTED = (ValueError, OSError)
HANG_SECONDS = 10


def seeds():
    """{name: (file name, bytes)}: one small valid file of each format the readers take."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(6, 3))
    text = "".join(" ".join(f"{v:.6g}" for v in row) + "\n" for row in X)
    npy, npz = io.BytesIO(), io.BytesIO()
    np.save(npy, X)
    np.savez_compressed(npz, X=X, y=np.arange(6) % 2)
    images = rng.integers(0, 256, (4, 3, 3), dtype=np.uint8)
    idx = bytes([0, 0, 0x08, 3]) + b"".join(n.to_bytes(4, "big") for n in images.shape)
    return {"text": ("inputs.txt", ("# comment\n" + text).encode()),
            "onehot": ("labels.txt", b"0 1 0\n1 0 0\n0 0 1\n"),
            "csv": ("data.csv", ("a,b,label\n" + "".join(
                f"{r[0]:.4g},{r[1]:.4g},{i % 2}\n" for i, r in enumerate(X))).encode()),
            "npy": ("X.npy", npy.getvalue()),
            "npz": ("data.npz", npz.getvalue()),
            "idx": ("images.idx", idx + images.tobytes()),
            "gzip": ("inputs.txt.gz", gzip.compress(text.encode(), mtime=0)),
            "checkpoint": ("net.gmlp", checkpoint_bytes())}


def checkpoint_bytes():
    from ghostmlp import Network, save
    net = Network(seed=1, dtype="float64", momentum=0.5, learning_rate=0.1)
    net.add_layer("input", 3).add_layer("hidden", 4).add_layer("output", 2).initialize()
    with tempfile.TemporaryDirectory() as folder:
        save(net, Path(folder) / "net.gmlp", extra={"note": "fuzz seed"})
        return (Path(folder) / "net.gmlp").read_bytes()


def apply(data, overwrites=(), cut=None, insert=None):
    """data with bytes overwritten ((position, byte) pairs, positions modulo the length),
    then cut to `cut` bytes (modulo length + 1), then `insert` (position, bytes) added."""
    data = bytearray(data)
    for position, byte in overwrites:
        if data:
            data[position % len(data)] = byte
    if cut is not None:
        del data[cut % (len(data) + 1):]
    if insert is not None:
        position, extra = insert
        position %= len(data) + 1
        data[position:position] = extra
    return bytes(data)


def read(filename, data, folder):
    """Write data as `filename` in folder and read it with every reader of that format
    (checkpoint.load for .gmlp, else formats.load as inputs and as labels), within
    HANG_SECONDS; an exception other than the documented ones propagates."""
    path = Path(folder) / filename
    path.write_bytes(data)
    with time_limit():
        try:
            if filename.endswith(".gmlp"):
                from ghostmlp.checkpoint import load
                load(path)
                return
            from ghostmlp.formats import load
            npz = filename.endswith(".npz")
            load(path, "inputs", key="X" if npz else None)
            load(path, "labels", key="y" if npz else None)
        except DOCUMENTED:
            pass


class Hang(Exception):
    """An input that a reader took more than HANG_SECONDS over."""


@contextlib.contextmanager
def time_limit(seconds=HANG_SECONDS):
    def hang(signum, frame):
        raise Hang(f"a reader took more than {seconds} s")
    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def random_edits(rnd, size):
    """Edits for apply(), drawn with random.Random rnd for a file of `size` bytes."""
    overwrites = [(rnd.randrange(max(size, 1)), rnd.randrange(256))
                  for _ in range(rnd.choice((0, 1, 1, 2, 4, 16)))]
    cut = rnd.randrange(size + 1) if rnd.random() < 0.2 else None
    insert = ((rnd.randrange(size + 1), rnd.randbytes(rnd.randrange(1, 9)))
              if rnd.random() < 0.2 else None)
    return {"overwrites": overwrites, "cut": cut, "insert": insert}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--memory-gib", type=float, default=4)
    args = parser.parse_args(argv)
    limit = int(args.memory_gib * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    corpus, rnd = seeds(), random.Random(args.seed)
    names = sorted(corpus)
    tried, failures, started = dict.fromkeys(names, 0), [], time.monotonic()
    warnings.simplefilter("ignore")         # numpy's notes on old .npy headers, among others
    with tempfile.TemporaryDirectory() as folder:
        last = Path(folder).parent / f"last_input.{os.getpid()}"
        while time.monotonic() - started < args.seconds:
            name = rnd.choice(names)
            filename, data = corpus[name]
            if rnd.random() < 0.05:
                data = rnd.randbytes(rnd.randrange(64))
                edits = {"random": len(data)}
            else:
                edits = random_edits(rnd, len(data))
                data = apply(data, **edits)
            last.write_bytes(data)
            try:
                read(filename, data, folder)
            except Exception as error:          # every escape is a finding
                failures.append({"format": name, "edits": repr(edits),
                                 "error": f"{type(error).__name__}: {error}"[:300]})
                print(json.dumps(failures[-1]), flush=True)
            tried[name] += 1
        last.unlink(missing_ok=True)
    elapsed = time.monotonic() - started
    print(json.dumps({"seconds": round(elapsed, 1), "inputs": sum(tried.values()),
                      "per_format": tried, "failures": len(failures)}))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
