"""One-file checkpoints, written and read by every rank at known offsets, loadable on any rank count.

Layout (all integers little-endian):

    0   b"GHOSTMLP" and the format version (uint64)
    16  header length H (uint64), then H bytes of UTF-8 JSON
    D   the arrays, D = 24 + H rounded up to 64 bytes; array offsets count from D and
        are multiples of 64

The header holds the architecture and options (the optimizer's among them), the training
state (epochs, the optimizer's step count), free-form `extra`, and for every array its
name, dtype (with an explicit byte order, always little-endian), shape, offset and
checksum. Weights, and each optimizer state buffer beside them, are stored as W.T
[fan_out, fan_in] so that every neuron's incoming values form one contiguous row: each
rank writes and reads the rows of its own neurons (``Parameters.read_rows`` and
``write_rows``), whatever the layout that saved them.
Ghost networks store zeros where they have no edge. Checksum of an array: the sum over its
rows r of (r + 1) * crc32(row bytes), modulo 2**64, so that ranks can add up their rows.
The file is written to PATH.tmp, synced and renamed over PATH: a crash mid-write leaves the
previous checkpoint intact, and a failed write (a full disk) removes PATH.tmp and raises an
OSError naming PATH. A reader checks every extent the header declares against the file's
size before allocating. Nothing in the file is ever executed (no pickle).
"""
import json
import math
import os
import zlib

import numpy as np

from ghostmlp import defaults
from ghostmlp.network import Network
from ghostmlp.optim import from_config

MAGIC = b"GHOSTMLP"
VERSION = 2
ALIGN = 64
CHUNK_BYTES = 1 << 24           # rows are written and read in pieces of about this size
# The header's fields that a reader uses, by dotted path, and their JSON types: a missing or
# mistyped one is refused by name before anything is built.
HEADER_FIELDS = {"network": dict, "state": dict, "extra": dict, "arrays": list,
                 "network.layers": list, "network.seed": int, "network.dtype": str,
                 "network.loss": str, "network.optimizer": dict, "network.optimizer.name": str,
                 "network.connectivity": str, "network.blocks": (int, type(None)),
                 "network.ghost_gradients": str,
                 "state.epochs_trained": int, "state.steps_trained": int}
ARRAY_FIELDS = {"name": str, "dtype": str, "shape": list, "offset": int, "checksum": int}
TYPE_NAMES = {dict: "an object", list: "a list", int: "an integer", str: "a string",
              type(None): "null"}


def _groups(net):
    """(layer, segment, W.T's name, b's name, fan_out, fan_in) of every (W.T, b) pair stored.

    The weights (segment "weights", arrays layerN/weights_t and layerN/bias) and each
    optimizer state buffer S (arrays layerN/S_t and layerN/S_bias); N counts from 1.
    """
    for layer, (fan_in, fan_out) in enumerate(zip(net.sizes[:-1], net.sizes[1:])):
        name = f"layer{layer + 1}"
        yield layer, "weights", f"{name}/weights_t", f"{name}/bias", fan_out, fan_in
        for state in net.parameters.state_names:
            yield layer, state, f"{name}/{state}_t", f"{name}/{state}_bias", fan_out, fan_in


def _entries(net):
    """{name: entry} of every array, with its dtype, shape and offset in the data region."""
    entries, offset = {}, 0
    dtype = net.dtype.newbyteorder("<").str
    for _, _, weights, bias, fan_out, fan_in in _groups(net):
        for name, shape in ((weights, [fan_out, fan_in]), (bias, [fan_out])):
            entries[name] = {"name": name, "dtype": dtype, "shape": shape, "offset": offset}
            offset += -(-int(np.prod(shape)) * net.dtype.itemsize // ALIGN) * ALIGN
    return entries


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

    def size(self):
        return os.fstat(self.fd).st_size

    def sync_close(self):
        try:
            os.fsync(self.fd)
        finally:
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

    def size(self):
        return self.fh.Get_size()

    def sync_close(self):
        try:
            self.fh.Sync()
        finally:
            self.fh.Close()

    def close(self):
        self.fh.Close()


def _allreduce_sum(comm, values):
    values = np.array(values, dtype=np.uint64)
    if comm is None:
        return values
    from mpi4py import MPI
    total = np.empty_like(values)
    comm.Allreduce(values, total, op=MPI.SUM)      # uint64 wraps around: sums mod 2**64
    return total


def save(net, path, extra=None):
    """Write `net` to `path` atomically; every rank of a parallel network must call it.

    One pass over this rank's rows: each block is written and added to the checksums at
    once; rank 0 then writes the header, whose space was reserved for the widest checksums.
    """
    if net.parameters is None:
        raise RuntimeError("save: call initialize() first")
    _watched(net, "checkpoint save", _save, net, path, extra)


def _watched(net, op, call, *args):
    """call(*args) as one call of the network's stall watchdog (none when serial)."""
    exchange = net.engine.exchange
    return exchange.watched_call(op, call, *args) if exchange is not None else call(*args)


def _save(net, path, extra):
    comm, params = net.communicator, net.parameters
    path = os.fspath(path)
    entries = _entries(net)
    header = {"format": "ghostmlp checkpoint", "version": VERSION, "byte_order": "little",
              "network": net.config(),
              "state": {"epochs_trained": net.epochs_trained, "steps_trained": params.step_count},
              "extra": extra or {}, "arrays": list(entries.values())}
    for entry in entries.values():
        entry["checksum"] = 2**64 - 1
    length = len(json.dumps(header).encode())
    data_start = _data_start(length)
    checksums = dict.fromkeys(entries, 0)
    temporary = path + ".tmp"
    prefix = f"{path}: checkpoint not saved (any previous checkpoint there is unchanged): "
    files = []
    _raise_first(_gathered(comm, _attempt(lambda: files.append(
        _MPIFile(comm, temporary, True) if comm is not None else _LocalFile(temporary, True)))),
        prefix)
    out = files[0]
    rank = comm.Get_rank() if comm is not None else 0

    def write_own_rows():
        if net.replica != 0:        # the other replicas hold the same values: one writes
            return
        little = net.dtype.newbyteorder("<")
        for layer, segment, weights, bias, _, fan_in in _groups(net):
            start, stop = params.own_neurons(layer)
            for lo, hi in _chunks(start, stop, fan_in * net.dtype.itemsize):
                rows, values = params.read_rows(layer, lo, hi, segment)
                for name, block in ((weights, rows), (bias, values[:, None])):
                    block = block.astype(little, copy=False)
                    checksums[name] += _row_checksum(block, lo)
                    out.write_at(data_start + entries[name]["offset"] + lo * block[0].nbytes,
                                 block)

    def write_header():
        text = json.dumps(header).encode().ljust(length)    # JSON allows trailing blanks
        out.write_at(0, MAGIC + VERSION.to_bytes(8, "little") + length.to_bytes(8, "little")
                     + text)

    failure = _attempt(write_own_rows)
    totals = _allreduce_sum(comm, [checksums[name] % 2**64 for name in entries])
    for entry, total in zip(entries.values(), totals):
        entry["checksum"] = int(total)
    if rank == 0 and failure is None:
        failure = _attempt(write_header)
    closing = _attempt(out.sync_close)      # always closed; a full disk may show only here
    failure = failure or closing
    # Every rank's rows must be on disk before rank 0 renames the file over the old one.
    failures = _gathered(comm, failure)
    if not any(failures):
        published = _attempt(lambda: _publish(temporary, path)) if rank == 0 else None
        failures = [published] if comm is None else [comm.bcast(published, root=0)]
    if any(failures) and rank == 0 and os.path.exists(temporary):
        os.remove(temporary)        # the old checkpoint, if any, was never touched
    _raise_first(failures, prefix)


def _publish(temporary, path):
    """Rename the finished file over `path` and sync its folder: the atomic step of save()."""
    os.replace(temporary, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


def _attempt(action):
    """None when action() succeeds, else (error type name, message) of its OSError or
    ValueError, or of an MPI-IO error (mpi4py's MPI.Exception, a RuntimeError: as OSError,
    its message the cause that ends MPICH's error stack)."""
    try:
        action()
    except (OSError, ValueError) as error:
        return type(error).__name__, str(error)
    except RuntimeError as error:
        cause = (str(error).strip().splitlines() or [""])[-1].split(": ", 1)[-1]
        return type(error).__name__, f"MPI-IO: {' '.join(cause.split())}"
    return None


def _gathered(comm, failure):
    """Every rank's failure (from _attempt, or None), on every rank."""
    return [failure] if comm is None else comm.allgather(failure)


def _raise_first(failures, prefix=""):
    """Raise the first rank's failure of _gathered's list, on every rank, so that none waits."""
    for found in failures:
        if found is not None:
            kind, message = found
            raise (ValueError if kind == "ValueError" else OSError)(prefix + message)


def _require_file(path, comm):
    """Raise FileNotFoundError on every rank unless every rank sees the file at `path`,
    naming the ranks (and hosts) that do not, before any collective open could wait."""
    missing = not os.path.isfile(path)
    if comm is None:
        if missing:
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        return
    from mpi4py import MPI
    seen = comm.allgather(None if not missing else MPI.Get_processor_name())
    lacking = [(rank, host) for rank, host in enumerate(seen) if host is not None]
    if len(lacking) == len(seen):
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    if lacking:
        where = ", ".join(f"rank {rank} (host {host})" for rank, host in lacking)
        raise FileNotFoundError(f"{path}: no such checkpoint file on {where} of "
                                f"{len(seen)}: the file must be visible to every rank")


def read_header(path, comm=None):
    """The header of the checkpoint at `path` (every rank reads it); ValueError names the file."""
    _require_file(path, comm)
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
    if version > VERSION:
        raise ValueError(f"{path}: checkpoint format version {version} comes from a newer "
                         f"ghostmlp; this one reads version {VERSION}: upgrade ghostmlp")
    if version != VERSION:
        raise ValueError(f"{path}: checkpoint format version {version}, this ghostmlp reads {VERSION}")
    length, size = int.from_bytes(start[16:24], "little"), source.size()
    if length > size - 24:      # before allocating a buffer of that length
        raise ValueError(f"{path}: the checkpoint header claims {length} bytes, the file has "
                         f"{size}: truncated or damaged")
    text = bytearray(length)
    try:
        source.read_at(24, text)
        header = json.loads(text)
    except ValueError as error:
        raise ValueError(f"{path}: unreadable checkpoint header ({error})") from None
    check_header(header, path)
    header["data_start"] = _data_start(len(text))
    check_extent(header, path, size)
    return header


def check_extent(header, path, size):
    """Raise a ValueError naming the file unless every array the header declares, and the
    weights its layers imply, lie within the file's `size` bytes: a damaged header is
    refused before a network of its sizes is allocated."""
    room = size - header["data_start"]
    for entry in header["arrays"]:
        name, shape = entry["name"], entry["shape"]
        if not all(_is(n, int) and n >= 0 for n in shape) or entry["offset"] < 0:
            raise ValueError(f"{path}: array {name} has shape {shape} at offset "
                             f"{entry['offset']}: not a valid extent"[:300])
        end = entry["offset"] + math.prod(shape) * _dtype(entry["dtype"], path).itemsize
        if end > room:
            raise ValueError(f"{path}: array {name} declares {entry['dtype']} {shape}, ending "
                             f"{end} bytes into the data, but the file holds {room}: "
                             "truncated or damaged"[:300])
    sizes = [max(layer[1], 0) for layer in header["network"]["layers"]]
    weights = sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
    weights *= _dtype(header["network"]["dtype"], path).itemsize
    if weights > room:
        raise ValueError(f"{path}: the layers {sizes} need {weights} bytes of weights, the "
                         f"file holds {room}: truncated or damaged"[:300])


def _dtype(name, path):
    try:
        return np.dtype(name)
    except (TypeError, ValueError, SyntaxError):    # numpy parses "(f8," as Python: SyntaxError
        raise ValueError(f"{path}: the checkpoint header names an unknown dtype {name!r}"[:300]) from None


def check_header(header, path):
    """Raise a ValueError naming the file and the field unless the header has every field of
    HEADER_FIELDS (and each array entry every field of ARRAY_FIELDS) with its type."""
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the checkpoint header is not a JSON object")
    for field, kinds in HEADER_FIELDS.items():
        value = header
        for key in field.split("."):
            if key not in value:
                raise ValueError(f"{path}: the checkpoint header lacks the field {field!r}")
            value = value[key]
        _check_type(value, kinds, field, path)
    for i, entry in enumerate(header["arrays"]):
        _check_type(entry, dict, f"arrays[{i}]", path)
        for field, kinds in ARRAY_FIELDS.items():
            if field not in entry:
                raise ValueError(f"{path}: the checkpoint header lacks the field arrays[{i}].{field}")
            _check_type(entry[field], kinds, f"arrays[{i}].{field}", path)
    for i, layer in enumerate(header["network"]["layers"]):
        if not (isinstance(layer, list) and len(layer) == 3 and isinstance(layer[0], str)
                and _is(layer[1], int) and isinstance(layer[2], (str, type(None)))):
            raise ValueError(f"{path}: the checkpoint header's field network.layers[{i}] must "
                             f"be [kind, size, activation], got {layer!r}")


def _is(value, kinds):
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return isinstance(value, kinds) and not (isinstance(value, bool) and bool not in kinds)


def _check_type(value, kinds, field, path):
    if not _is(value, kinds):
        names = " or ".join(TYPE_NAMES[kind] for kind in (kinds if isinstance(kinds, tuple)
                                                          else (kinds,)))
        raise ValueError(f"{path}: the checkpoint header's field {field!r} must be {names}, "
                         f"got {value!r}"[:300])


def load(path, comm=None, connectivity=None, blocks=None, master=False, grid=None,
         stall_timeout=defaults.STALL_TIMEOUT, replica_update="auto"):
    """A ready Network from the checkpoint at `path`, laid out on the ranks of `comm`.

    Any rank count and grid (D, M) and replica_update (see Network), and either layout that holds the saved
    network within a replica: a dense checkpoint
    loads dense; a ghost one loads with its K blocks (on ranks that divide K) or, with
    connectivity="dense", as the dense network with zeros off the ghost edges. Every
    array is checked against its checksum; the arrays are read, never unpickled.
    """
    path = os.fspath(path)
    _require_file(path, comm)
    source = _MPIFile(comm, path, False) if comm is not None else _LocalFile(path, False)
    try:
        header = _header(source, path)
        try:
            net = _network(header["network"], path, comm, connectivity, blocks, master, grid,
                           stall_timeout, replica_update)
        except KeyError as error:
            raise ValueError(f"{path}: the checkpoint header lacks the key {error}") from None
        _watched(net, "checkpoint load", _read_arrays, net, source, header, path)
    finally:
        source.close()
    net.epochs_trained = header["state"]["epochs_trained"]
    net.parameters.step_count = header["state"]["steps_trained"]
    return net


def _network(config, path, comm, connectivity, blocks, master, grid, stall_timeout,
             replica_update):
    """The Network of a checkpoint's header, laid out on comm's ranks, its weights zero."""
    saved = config["connectivity"]
    connectivity = connectivity or saved
    if saved == "dense" and connectivity == "ghost":
        raise ValueError(f"{path}: a dense checkpoint cannot be loaded as a ghost network "
                         "(its off-block weights would be lost)")
    if blocks not in (None, config["blocks"]):
        raise ValueError(f"{path}: saved with blocks={config['blocks']}, asked for {blocks} "
                         "(a checkpoint keeps its blocks; connectivity='dense' drops them)")
    net = Network(seed=config["seed"], dtype=config["dtype"], loss=config["loss"],
                  optimizer=from_config(config["optimizer"]), comm=comm,
                  connectivity=connectivity,
                  blocks=config["blocks"] if connectivity == "ghost" else None,
                  ghost_gradients=config["ghost_gradients"], master=master, grid=grid,
                  replica_update=replica_update,
                  stall_timeout=stall_timeout)
    for kind, size, activation in config["layers"]:
        net.add_layer(kind, size, activation=activation)
    try:
        net.initialize(draw=False)          # the file provides every weight: draw none
    except ValueError as error:
        raise ValueError(f"{path}: {error} (a ghost checkpoint loads on working-rank counts "
                         f"that divide its blocks, or anywhere as connectivity='dense')") from None
    return net


def _read_arrays(net, source, header, path):
    entries = {entry["name"]: entry for entry in header["arrays"]}
    wanted = _entries(net)
    for name, expected in wanted.items():
        entry = entries.get(name)
        if entry is None:
            raise ValueError(f"{path}: checkpoint lacks the array {name}")
        if entry["shape"] != expected["shape"] or np.dtype(entry["dtype"]) != np.dtype(expected["dtype"]):
            raise ValueError(f"{path}: array {name} is {entry['dtype']} {entry['shape']}, "
                             f"expected {expected['dtype']} {expected['shape']}")
    checksums = dict.fromkeys(wanted, 0)

    def read_own_rows():
        little = net.dtype.newbyteorder("<")
        for layer, segment, weights, bias, _, fan_in in _groups(net):
            start, stop = params.own_neurons(layer)
            for lo, hi in _chunks(start, stop, fan_in * net.dtype.itemsize):
                blocks = []
                for name, width in ((weights, fan_in), (bias, 1)):
                    block = np.empty((hi - lo, width), dtype=little)
                    source.read_at(header["data_start"] + entries[name]["offset"]
                                   + lo * block[0].nbytes, block)
                    if net.replica == 0:    # each row counted once, whatever the grid
                        checksums[name] += _row_checksum(block, lo)
                    blocks.append(block.astype(net.dtype, copy=False))   # to native byte order
                params.write_rows(layer, lo, blocks[0], blocks[1][:, 0], segment)

    def read_if_writing():
        with net.engine.writing() as writes:
            if writes:
                read_own_rows()

    comm, params = net.communicator, net.parameters
    _raise_first(_gathered(comm, _attempt(read_if_writing)))
    totals = _allreduce_sum(comm, [total % 2**64 for total in checksums.values()])
    for name, total in zip(checksums, totals):
        if int(total) != entries[name]["checksum"]:
            raise ValueError(f"{path}: array {name} fails its checksum: the file is damaged")
