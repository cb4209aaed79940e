"""One-file checkpoints, written and read by every rank at known offsets, loadable on any rank count.

Layout (all integers little-endian):

    0   b"GHOSTMLP" and the format version (uint64)
    16  header length H (uint64), then H bytes of UTF-8 JSON
    D   the arrays, D = 24 + H rounded up to 64 bytes; array offsets count from D and
        are multiples of 64

The header holds the architecture and options, the training state (epochs, steps), the
input normalisation, free-form `extra`, and for every array its name, dtype (with an
explicit byte order, always little-endian), shape, offset and checksum. Weights are stored
as W.T [fan_out, fan_in] so that every neuron's incoming weights form one contiguous row:
each rank writes and reads the rows of its own neurons, whatever the layout that saved them.
Ghost networks store zeros where they have no edge. Checksum of an array: the sum over its
rows r of (r + 1) * crc32(row bytes), modulo 2**64, so that ranks can add up their rows.
The file is written to PATH.tmp, synced and renamed over PATH: a crash mid-write leaves the
previous checkpoint intact. Nothing in the file is ever executed (no pickle).
"""
import json
import os
import zlib

import numpy as np

MAGIC = b"GHOSTMLP"
VERSION = 1
ALIGN = 64
CHUNK_BYTES = 1 << 24           # rows are written and read in pieces of about this size


def _arrays(net):
    """(name, layer, velocity, rows, cols) of every array a checkpoint of `net` holds."""
    names = []
    for layer, (fan_in, fan_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:]), 1):
        names.append((f"layer{layer}/weights_t", layer, False, fan_out, fan_in))
        names.append((f"layer{layer}/bias", layer, False, fan_out, None))
        if net.momentum:
            names.append((f"layer{layer}/velocity_t", layer, True, fan_out, fan_in))
            names.append((f"layer{layer}/velocity_bias", layer, True, fan_out, None))
    return names


def _data_start(header_length):
    return -(-(24 + header_length) // ALIGN) * ALIGN


def _row_checksum(rows, first_row):
    """sum_r (first_row + r + 1) * crc32(row r) mod 2**64 over a 2-D little-endian block."""
    total = 0
    for r, row in enumerate(rows):
        total += (first_row + r + 1) * zlib.crc32(row.tobytes())
    return total % 2**64


def _chunks(start, stop, row_bytes):
    step = max(1, CHUNK_BYTES // max(row_bytes, 1))
    for lo in range(start, stop, step):
        yield lo, min(stop, lo + step)


class _LocalFile:
    """pwrite/pread on a plain file: the serial twin of MPI-IO's Write_at/Read_at."""

    def __init__(self, path, write):
        self.path = path
        self.fd = os.open(path, (os.O_WRONLY | os.O_CREAT | os.O_TRUNC) if write else os.O_RDONLY,
                          0o644)

    def write_at(self, offset, data):
        view = memoryview(data).cast("B")
        while view:
            written = os.pwrite(self.fd, view, offset)
            view, offset = view[written:], offset + written

    def read_at(self, offset, out):
        view = memoryview(out).cast("B")
        while view:
            got = os.preadv(self.fd, [view], offset)
            if got == 0:
                raise ValueError(f"{self.path}: the checkpoint ends early (truncated)")
            view, offset = view[got:], offset + got

    def sync_close(self):
        os.fsync(self.fd)
        os.close(self.fd)

    def close(self):
        os.close(self.fd)


class _MPIFile:
    def __init__(self, comm, path, write):
        from mpi4py import MPI
        self.path, self.status = path, MPI.Status()
        mode = (MPI.MODE_WRONLY | MPI.MODE_CREATE) if write else MPI.MODE_RDONLY
        self.fh = MPI.File.Open(comm, str(path), mode)
        if write:
            self.fh.Set_size(0)

    def write_at(self, offset, data):
        self.fh.Write_at(offset, memoryview(data).cast("B"))

    def read_at(self, offset, out):
        view = memoryview(out).cast("B")
        self.fh.Read_at(offset, view, self.status)
        if self.status.Get_count() != len(view):
            raise ValueError(f"{self.path}: the checkpoint ends early (truncated)")

    def sync_close(self):
        self.fh.Sync()
        self.fh.Close()

    def close(self):
        self.fh.Close()


def _comm(net):
    return net._model.exchange.comm if net._model is not None else None


def _allreduce_sum(comm, values):
    values = np.array(values, dtype=np.uint64)
    if comm is None:
        return values
    from mpi4py import MPI
    total = np.empty_like(values)
    comm.Allreduce(values, total, op=MPI.SUM)      # uint64 wraps around: sums mod 2**64
    return total


def _own_blocks(net, layer, velocity, cols):
    """(first row, little-endian rows) blocks of this rank's neurons of one array."""
    start, stop = net.own_neurons(layer)
    dtype = net.dtype.newbyteorder("<")
    for lo, hi in _chunks(start, stop, (cols or 1) * net.dtype.itemsize):
        rows, bias = net.own_rows(layer, lo, hi, velocity)
        yield lo, (rows if cols else bias[:, None]).astype(dtype, copy=False)


def save(net, path, extra=None):
    """Write `net` to `path` atomically; every rank of a parallel network must call it."""
    net._require_initialized()
    comm = _comm(net)
    path = os.fspath(path)
    item = net.dtype.itemsize
    entries, checksums, offset = [], [], 0
    for name, layer, velocity, rows, cols in _arrays(net):
        checksums.append(sum(_row_checksum(block, lo)
                             for lo, block in _own_blocks(net, layer, velocity, cols)) % 2**64)
        entries.append({"name": name, "dtype": net.dtype.newbyteorder("<").str,
                        "shape": [rows, cols] if cols else [rows], "offset": offset})
        offset += -(-rows * (cols or 1) * item // ALIGN) * ALIGN
    for entry, checksum in zip(entries, _allreduce_sum(comm, checksums)):
        entry["checksum"] = int(checksum)
    header = {"format": "ghostmlp checkpoint", "version": VERSION, "byte_order": "little",
              "network": net.config(),
              "state": {"epochs_trained": net.epochs_trained, "steps_trained": net.steps_trained},
              "normaliser": net.normaliser.to_dict() if net.normaliser is not None else None,
              "extra": extra or {}, "arrays": entries}
    text = json.dumps(header).encode()
    data_start = _data_start(len(text))
    temporary = path + ".tmp"
    out = _MPIFile(comm, temporary, True) if comm is not None else _LocalFile(temporary, True)
    rank = comm.Get_rank() if comm is not None else 0

    def write_own_rows():
        if rank == 0:
            out.write_at(0, MAGIC + VERSION.to_bytes(8, "little") + len(text).to_bytes(8, "little")
                         + text)
        for entry, (name, layer, velocity, rows, cols) in zip(entries, _arrays(net)):
            row_bytes = (cols or 1) * item
            for lo, block in _own_blocks(net, layer, velocity, cols):
                out.write_at(data_start + entry["offset"] + lo * row_bytes, block)

    try:
        failure = _attempt(write_own_rows)
    finally:
        out.sync_close()
    _raise_on_every_rank(comm, failure)
    _raise_on_every_rank(comm, _attempt(lambda: _publish(temporary, path)) if rank == 0 else None)


def _publish(temporary, path):
    """Rename the finished file over `path` and sync its folder: the atomic step of save()."""
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _attempt(action):
    """None when action() succeeds, else (error type name, message) of its OSError or ValueError."""
    try:
        action()
    except (OSError, ValueError) as error:
        return type(error).__name__, str(error)
    return None


def _raise_on_every_rank(comm, failure):
    """Raise the first rank's failure (from _attempt) on every rank, so that none waits."""
    failures = [failure] if comm is None else comm.allgather(failure)
    for found in failures:
        if found is not None:
            kind, message = found
            raise (ValueError if kind == "ValueError" else OSError)(message)


def read_header(path, comm=None):
    """The header of the checkpoint at `path` (every rank reads it); ValueError names the file."""
    source = _MPIFile(comm, path, False) if comm is not None else _LocalFile(path, False)
    try:
        return _header(source, path)
    finally:
        source.close()


def _header(source, path):
    start = bytearray(24)
    try:
        source.read_at(0, start)
    except ValueError:
        raise ValueError(f"{path}: not a ghostmlp checkpoint (shorter than its header)") from None
    if start[:8] != MAGIC:
        raise ValueError(f"{path}: not a ghostmlp checkpoint (bad magic bytes)")
    version = int.from_bytes(start[8:16], "little")
    if version != VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, this ghostmlp reads {VERSION}")
    text = bytearray(int.from_bytes(start[16:24], "little"))
    try:
        source.read_at(24, text)
        header = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path}: unreadable checkpoint header ({error})") from None
    header["data_start"] = _data_start(len(text))
    return header


def load(path, comm=None, connectivity=None, blocks=None, master=False):
    """A ready Network from the checkpoint at `path`, laid out on the ranks of `comm`.

    Any rank count and either layout that holds the saved network: a dense checkpoint
    loads dense; a ghost one loads with its K blocks (on ranks that divide K) or, with
    connectivity="dense", as the dense network with zeros off the ghost edges. Every
    array is checked against its checksum; the arrays are read, never unpickled.
    """
    from ghostmlp.network import Network
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    source = _MPIFile(comm, path, False) if comm is not None else _LocalFile(path, False)
    try:
        header = _header(source, path)
        config = header["network"]
        saved = config["connectivity"]
        connectivity = connectivity or saved
        if saved == "dense" and connectivity == "ghost":
            raise ValueError(f"{path}: a dense checkpoint cannot be loaded as a ghost network "
                             "(its off-block weights would be lost)")
        if blocks not in (None, config["blocks"]):
            raise ValueError(f"{path}: saved with blocks={config['blocks']}, asked for {blocks} "
                             "(a checkpoint keeps its blocks; connectivity='dense' drops them)")
        net = Network(seed=config["seed"], dtype=config["dtype"], loss=config["loss"],
                      learning_rate=config["learning_rate"], momentum=config["momentum"],
                      weight_decay=config["weight_decay"], comm=comm, connectivity=connectivity,
                      blocks=config["blocks"] if connectivity == "ghost" else None,
                      ghost_gradients=config["ghost_gradients"], master=master)
        for kind, size, activation in config["layers"]:
            net.add_layer(kind, size, activation=activation)
        try:
            net._build(draw=False)          # the file provides every weight: draw none
        except ValueError as error:
            raise ValueError(f"{path}: {error} (a ghost checkpoint loads on working-rank counts "
                             f"that divide its blocks, or anywhere as connectivity='dense')") from None
        _read_arrays(net, source, header, path)
    finally:
        source.close()
    net.epochs_trained = header["state"]["epochs_trained"]
    net.steps_trained = header["state"]["steps_trained"]
    if header["normaliser"] is not None:
        from ghostmlp.data import Normaliser
        net.normaliser = Normaliser.from_dict(header["normaliser"])
    return net


def _read_arrays(net, source, header, path):
    entries = {entry["name"]: entry for entry in header["arrays"]}
    expected = _arrays(net)
    missing = [name for name, *_ in expected if name not in entries]
    if missing:
        raise ValueError(f"{path}: checkpoint lacks the arrays {missing}")
    dtype = np.dtype(net.dtype).newbyteorder("<")
    for name, layer, velocity, rows, cols in expected:
        entry = entries[name]
        if entry["shape"] != ([rows, cols] if cols else [rows]) or np.dtype(entry["dtype"]) != dtype:
            raise ValueError(f"{path}: array {name} is {entry['dtype']} {entry['shape']}, "
                             f"expected {dtype.str} {[rows, cols] if cols else [rows]}")
    checksums = []

    def read_own_rows():
        for name, layer, velocity, rows, cols in expected:
            checksums.append(_read_own_rows(net, source, header, entries[name], layer, velocity,
                                            cols, dtype))

    comm = _comm(net)
    _raise_on_every_rank(comm, _attempt(read_own_rows))
    for (name, *_), total in zip(expected, _allreduce_sum(comm, checksums)):
        if int(total) != entries[name]["checksum"]:
            raise ValueError(f"{path}: array {name} fails its checksum: the file is damaged")


def _read_own_rows(net, source, header, entry, layer, velocity, cols, dtype):
    """Read this rank's rows of one array into the network; returns their checksum."""
    start, stop = net.own_neurons(layer)
    total = 0
    for lo, hi in _chunks(start, stop, (cols or 1) * dtype.itemsize):
        block = np.empty((hi - lo, cols or 1), dtype=dtype)
        source.read_at(header["data_start"] + entry["offset"] + lo * block.shape[1] * dtype.itemsize,
                       block)
        total += _row_checksum(block, lo)
        values = block.astype(net.dtype, copy=False)         # to the native byte order
        rows, bias = net.own_rows(layer, lo, hi, velocity)
        if cols:
            rows = values
        else:
            bias = values[:, 0]
        net.set_own_rows(layer, lo, rows, bias, velocity)
    return total % 2**64
