"""Every MPI call of training: ghost halos, gathers, reductions, the step's exchanges, counters and timers."""
import contextlib
import ctypes
import mmap
import os
import tempfile
import time

import numpy as np
from mpi4py import MPI

from ghostmlp import defaults
from ghostmlp.partition import gradient_buckets
from ghostmlp.watchdog import STALL_EXIT, Watch, Watchdog, watched

# Tags of halo messages, named after the receiving slot: a value for the receiver's
# ghostTop (the sender's last neuron) or for its ghostBottom (the sender's first neuron).
TAG_TOP, TAG_BOTTOM = 11, 12
_CACHE_KEYVAL = []      # the MPI attribute under which a communicator keeps ghostmlp's copies
# Where replicas that share memory keep it: a tmpfs, where there is one.
SHARED_FOLDER = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


def library_communicators(comm, master, grid):
    """(duplicate of comm, replica's model ranks, their working ranks, same-model-rank replicas).

    grid (D, M): rank r of comm is model rank r % M of replica r // M (a Cartesian split,
    as mpi4py-fft's Subcomm). Made once per comm, master and grid and cached as an
    attribute of `comm`, so that networks built one after another (sweeps,
    cross-validation) share them instead of using up MPI's communicators. Collective.
    """
    if not _CACHE_KEYVAL:
        _CACHE_KEYVAL.append(MPI.Comm.Create_keyval())
    cache = comm.Get_attr(_CACHE_KEYVAL[0])
    if cache is None:
        cache = {}
        comm.Set_attr(_CACHE_KEYVAL[0], cache)
    key = (master, tuple(grid))
    if key not in cache:
        dup = comm.Dup()
        cart = dup.Create_cart(list(grid))
        model, replicas = cart.Sub([False, True]), cart.Sub([True, False])
        working = model.Get_rank() >= (1 if master else 0)
        workers = model.Split(0 if working else MPI.UNDEFINED, model.Get_rank())
        cache[key] = (dup, model, workers, replicas)
    return cache[key]


def _persistent_collectives(version, comm):
    """Whether the library has MPI 4's persistent collectives: an MPI 4 library has, and
    one that reports less is asked on comm (Open MPI 5 reports MPI 3.1 and has them)."""
    if version >= (4, 0):
        return True
    values = np.zeros(2, np.float32)
    try:
        made = [comm.Allgatherv_init(MPI.IN_PLACE, [values, ([2], [0])]),
                comm.Reduce_scatter_init(values[:1], values[1:], [1], op=MPI.SUM)]
    except (NotImplementedError, MPI.Exception):
        return False
    for request in made:
        request.Free()
    return True


# MPI 4's persistent collectives (MPICH 4, Open MPI 5); older libraries (Blue Gene/Q's
# MPI 2.2) run the same collective as a blocking call when it is started.
PERSISTENT_COLLECTIVES = _persistent_collectives(MPI.Get_version(), MPI.COMM_SELF)


class Persistent:
    """Requests made once and started each step, with what one start sends: point-to-point
    messages and bytes, or one collective of `kind`; `run`: a blocking call in their place.
    tally [starts, seconds inside MPI]: what its starts and waits did since the exchange
    last counted them (Exchange.start or compiled code adds to it)."""

    def __init__(self, requests, messages=0, nbytes=0, kind=None, run=None):
        self.requests, self.messages, self.nbytes, self.kind = requests, messages, nbytes, kind
        self.run = run
        self.tally = np.zeros(2)
        self.freed = False

    def free(self):
        for request in self.requests:
            request.Free()
        self.requests, self.freed = [], True


def _compiled_entry_points():
    """The addresses of MPI_Startall and MPI_Waitall in the library that mpi4py loaded
    (looked up through its extension module, whose dependencies hold it), or None where
    none are found: then the step calls MPI through mpi4py."""
    try:
        library = ctypes.CDLL(MPI.__file__)
        return tuple(ctypes.cast(getattr(library, name), ctypes.c_void_p).value
                     for name in ("MPI_Startall", "MPI_Waitall"))
    except (OSError, AttributeError):
        return None


COMPILED_ENTRY_POINTS = _compiled_entry_points()
# The names of the waits that compiled code marks in flight, for the watchdog's message,
# by the kind of persistent exchange (StepExchange._requests) they finish.
COMPILED_WAITS = {"halo": "halo wait", "allgather": "allgather", "reverse halo": "reverse halo",
                  "reduce_scatter": "reduce_scatter", "replica barrier": "replica barrier",
                  "loss sum": "replicas' loss allreduce"}
WAIT_NAMES = tuple(COMPILED_WAITS.values())


class CompiledRequests:
    """A persistent exchange as compiled code starts and waits it (ghostmlp._mpi): its
    requests' handles as the library lays them out, room for their statuses, its tally,
    the in-flight record [waits begun, WAIT_NAMES index + 1 of the one in progress (0:
    none), layer] and the library's entry points. Keeps the persistent alive."""

    def __init__(self, persistent, wait, inflight, entry_points):
        width = MPI._sizeof(MPI.Request)
        mask = (1 << 8 * width) - 1         # a handle as an unsigned value of that width
        self.persistent, self.count = persistent, len(persistent.requests)
        self.handles = np.array([MPI._handleof(r) & mask for r in persistent.requests],
                                dtype=np.dtype(f"u{width}"))
        self.statuses = np.zeros(self.count * MPI._sizeof(MPI.Status), np.uint8)
        self.tally, self.inflight = persistent.tally, inflight
        self.op = WAIT_NAMES.index(wait) + 1
        self.startall, self.waitall = entry_points


class _Timed:
    """Exchange.timed's context: a class, not a generator, since it wraps every step (a
    generator context costs about 1.3 µs more a step)."""
    __slots__ = ("exchange", "step", "started")

    def __init__(self, exchange, step):
        self.exchange, self.step = exchange, bool(step)

    def __enter__(self):
        self.started = time.perf_counter()

    def __exit__(self, *error):
        self.exchange.step_seconds += time.perf_counter() - self.started
        self.exchange.iterations += self.step


def where():
    """This rank, as the watchdog names it: its rank in MPI.COMM_WORLD and its host."""
    world = MPI.COMM_WORLD
    return f"rank {world.Get_rank()} of {world.Get_size()} on host {MPI.Get_processor_name()}"


def abort():
    MPI.COMM_WORLD.Abort(STALL_EXIT)


class Exchange:
    """Communication of one network on the library's duplicates of `comm`, counted and timed.

    A grid (D, M) holds D replicas of M model ranks each (default (1, size)). Within a
    replica, working ranks are all its ranks, or all but its first with master=True (that
    one only takes part in the output gather); halo neighbours form a ring of the working
    ranks. Across replicas, the ranks of one model rank reduce their gradients.
    Counters: point-to-point messages and bytes sent, collective calls by kind, seconds
    spent inside MPI calls (waits included), and the training steps and their seconds.
    Its blocking calls, and the step's, are @watched calls of `watch`
    (ghostmlp.watchdog): with stall_timeout > 0 a watchdog ends the whole job when one
    makes no progress for that many seconds.
    """

    def __init__(self, comm, master=False, grid=None, stall_timeout=defaults.STALL_TIMEOUT):
        grid = tuple(grid) if grid is not None else (1, comm.Get_size())
        self.comm, self.model, self.workers, self.replicas = library_communicators(
            comm, master, grid)
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.n_replicas, self.replica = grid[0], self.replicas.Get_rank()
        self.model_rank, self.model_size = self.model.Get_rank(), self.model.Get_size()
        first_worker = 1 if master else 0
        self.is_worker = self.model_rank >= first_worker
        self.n_workers = self.model_size - first_worker
        self.worker_rank = self.model_rank - first_worker if self.is_worker else -1
        self.prev = (self.worker_rank - 1) % self.n_workers
        self.next = (self.worker_rank + 1) % self.n_workers
        self.first_worker = first_worker
        self._plans = {}
        self._persistent = []       # every Persistent made, until freed and counted
        self.reset_counters()
        self.watch = Watch()
        self.watchdog = (Watchdog(self.watch, stall_timeout, where(), abort)
                         if stall_timeout else None)

    def reset_counters(self):
        self._count_persistent()
        self.messages = 0
        self.bytes = 0
        self.collectives = {}
        self.seconds = 0.0
        self.iterations = 0
        self.step_seconds = 0.0

    def timed(self, step=False):
        """Count what runs inside as training time of stats(), as one iteration when step=True."""
        return _Timed(self, step)

    @contextlib.contextmanager
    def uncounted(self):
        """Leave the communication of what runs inside (inference) out of stats()."""
        self._count_persistent()
        saved = self.messages, self.bytes, dict(self.collectives), self.seconds
        try:
            yield
        finally:
            self._count_persistent()
            self.messages, self.bytes, self.collectives, self.seconds = saved

    @watched()
    def watched_call(self, op, call, *args):
        """call(*args), watched as one blocking call `op` (a checkpoint's collective I/O),
        whatever calls of the exchange it makes inside."""
        return call(*args)

    def _count(self, kind, times=1):
        self.collectives[kind] = self.collectives.get(kind, 0) + times

    def _made(self, persistent):
        self._persistent.append(persistent)
        return persistent

    def _count_persistent(self):
        """Add the persistent exchanges' tallies to the counters and clear them; forget the freed."""
        for persistent in self._persistent:
            starts, seconds = persistent.tally
            starts = int(starts)
            self.messages += starts * persistent.messages
            self.bytes += starts * persistent.nbytes
            if persistent.kind and starts:
                self._count(persistent.kind, starts)
            self.seconds += seconds
            persistent.tally[:] = 0
        self._persistent = [p for p in self._persistent if not p.freed]

    def failed(self, error):
        """Raise MPI's error `error`, returned to compiled code by one of its calls."""
        raise MPI.Exception(error)

    # ------------------------------------------------------------------ halo

    def halo(self, rows):
        """The ghost exchange of a halo buffer rows[n_own + 2, B], as persistent requests.

        Sends row 1 (first own neuron) to prev's ghostBottom and row n_own (last own
        neuron) to next's ghostTop; receives row 0 from prev and row n_own + 1 from next.
        Start it with start(), finish it with wait(); made once per buffer view.
        """
        w = self.workers
        return self._made(Persistent([
            w.Recv_init(rows[0], source=self.prev, tag=TAG_TOP),
            w.Recv_init(rows[-1], source=self.next, tag=TAG_BOTTOM),
            w.Send_init(rows[1], dest=self.prev, tag=TAG_BOTTOM),
            w.Send_init(rows[-2], dest=self.next, tag=TAG_TOP),
        ], messages=2, nbytes=rows[1].nbytes + rows[-2].nbytes))

    def reverse_halo(self, rows, inbox):
        """The return of the ghost rows' deltas to their owners, as persistent requests.

        rows[n_own + 2, B]: row 0 (ghostTop) goes to prev, row n_own + 1 (ghostBottom) to
        next; prev's ghostBottom delta arrives in inbox[0], next's ghostTop delta in inbox[1]
        (a [2, B] buffer), for the caller to add to rows 1 and n_own.
        """
        w = self.workers
        return self._made(Persistent([
            w.Recv_init(inbox[0], source=self.prev, tag=TAG_BOTTOM),
            w.Recv_init(inbox[1], source=self.next, tag=TAG_TOP),
            w.Send_init(rows[0], dest=self.prev, tag=TAG_TOP),
            w.Send_init(rows[-1], dest=self.next, tag=TAG_BOTTOM),
        ], messages=2, nbytes=rows[0].nbytes + rows[-1].nbytes))

    def start(self, persistent, finish=False):
        """Start a halo or a persistent collective (counted in its tally); finish=True: and
        wait for it, with one clock reading at each end (the step's blocking exchanges)."""
        begin = MPI.Wtime()
        if persistent.run is None:
            MPI.Prequest.Startall(persistent.requests)
            if finish:
                MPI.Request.Waitall(persistent.requests)
        else:
            persistent.run()
        persistent.tally += (1, MPI.Wtime() - begin)

    def wait(self, persistent):
        """Wait for what start() started."""
        begin = MPI.Wtime()
        MPI.Request.Waitall(persistent.requests)
        persistent.tally[1] += MPI.Wtime() - begin

    # ----------------------------------------------------------- collectives

    def allgather_rows(self, full, counts, everyone=False):
        """The gather of each working rank's rows of full[n, B] in place, counts[r] rows each,
        as a persistent collective (MPI 4; an older library gathers when it is started).

        everyone=True gathers over all ranks, a master included with no rows of its own.
        Collective: every rank makes it at the same point.
        """
        comm = self.model if everyone else self.workers
        spec = [full, self._plan(tuple(counts), full.shape[1], everyone)]
        return self._persistent_or_blocking("allgather",
                                            lambda: comm.Allgatherv_init(MPI.IN_PLACE, spec),
                                            lambda: comm.Allgatherv(MPI.IN_PLACE, spec))

    def _plan(self, counts, batch, everyone):
        """(sizes, displacements) in values of a gather of rows; built once per layout and batch."""
        key = (counts, batch, everyone)
        if key not in self._plans:
            rows = ((0,) * self.first_worker if everyone else ()) + counts
            sizes = [r * batch for r in rows]
            self._plans[key] = (sizes, [sum(sizes[:r]) for r in range(len(sizes))])
        return self._plans[key]

    def reduce_scatter_rows(self, partial, own, counts):
        """own := the sum over working ranks of this rank's rows of partial[n, B], as a
        persistent collective (as allgather_rows)."""
        sizes = self._plan(tuple(counts), partial.shape[1], False)[0]
        w = self.workers
        return self._persistent_or_blocking(
            "reduce_scatter", lambda: w.Reduce_scatter_init(partial, own, sizes, op=MPI.SUM),
            lambda: w.Reduce_scatter(partial, own, sizes, op=MPI.SUM))

    def replicas_share_memory(self):
        """Whether every replica of this model rank runs on this node (MPI 3's
        COMM_TYPE_SHARED); collective over the replicas."""
        if MPI.Get_version() < (3, 0):
            return False
        node = self.replicas.Split_type(MPI.COMM_TYPE_SHARED)
        together = node.Get_size() == self.replicas.Get_size()
        node.Free()
        return bool(self.replicas.allreduce(together, op=MPI.LAND))

    @watched("replica barrier", layer=None)
    def replicas_meet(self):
        """Block until every replica of this model rank has come here."""
        self.replicas.Barrier()

    def replica_barrier(self):
        """A barrier of the replicas of this model rank, as a persistent collective."""
        comm = self.replicas
        return self._persistent_or_blocking("barrier", comm.Barrier_init, comm.Barrier)

    def replica_loss_sum(self, slot):
        """slot (one value) := its sum over the replicas of this model rank, in place, as a
        persistent collective."""
        comm = self.replicas
        return self._persistent_or_blocking(
            "allreduce", lambda: comm.Allreduce_init(MPI.IN_PLACE, slot, op=MPI.SUM),
            lambda: comm.Allreduce(MPI.IN_PLACE, slot, op=MPI.SUM))

    def _persistent_or_blocking(self, kind, make, run):
        """The Persistent of the collective make() makes, or of the blocking call run() where
        the library has no such persistent collective."""
        if PERSISTENT_COLLECTIVES:
            try:
                return self._made(Persistent([make()], kind=kind))
            except (NotImplementedError, MPI.Exception):
                pass
        return self._made(Persistent([], kind=kind, run=run))

    @watched("allreduce", layer=None)
    def allreduce_sum(self, array, across="model"):
        """array := its sum over the replica's ranks (across="model": each rank's share of a
        whole layer) or over the replicas ("replicas"), in place; not per step."""
        (self.model if across == "model" else self.replicas).Allreduce(
            MPI.IN_PLACE, array, op=MPI.SUM)

    @watched("reduce", layer=None)
    def reduce_sum(self, array, root):
        """array := its sum over the replica's ranks, on rank `root` of comm only (in place);
        only root's replica takes part, the others keep theirs."""
        model_size = self.model.Get_size()
        if self.rank // model_size != root // model_size:
            return
        if self.rank == root:
            self.model.Reduce(MPI.IN_PLACE, array, op=MPI.SUM, root=root % model_size)
        else:
            self.model.Reduce(array, None, op=MPI.SUM, root=root % model_size)

    @watched("allgather of samples", layer=None)
    def allgather_samples(self, rows, counts):
        """[sum(counts), n] on every rank: the replicas' rows[counts[d], n], replica by replica."""
        n = rows.shape[1]
        full = np.empty((sum(counts), n), dtype=rows.dtype)
        sizes = [count * n for count in counts]
        start = MPI.Wtime()
        self.replicas.Allgatherv(rows, [full, (sizes, [sum(sizes[:d])
                                                      for d in range(len(sizes))])])
        self._count("allgather")
        self.seconds += MPI.Wtime() - start
        return full

    @watched("allreduce of statistics", layer=None)
    def summarise(self, values):
        """(max, mean) over all ranks of each of a list of floats, as two float64 arrays."""
        local = np.asarray(values, dtype=np.float64)
        maxima, totals = np.empty_like(local), np.empty_like(local)
        self.comm.Allreduce(local, maxima, op=MPI.MAX)
        self.comm.Allreduce(local, totals, op=MPI.SUM)
        return maxima, totals / self.size


    def stats(self):
        """Per-iteration compute and communication seconds (max, mean over ranks), % in
        communication, messages and bytes per rank, collectives by kind (collective call)."""
        self._count_persistent()
        n = max(self.iterations, 1)
        comm, step = self.seconds / n, self.step_seconds / n
        (step_max, comm_max, compute_max, msg_max, bytes_max), (
            _, comm_mean, compute_mean, msg_mean, bytes_mean) = (
            map(float, values) for values in self.summarise(
                [step, comm, step - comm, self.messages / n, self.bytes / n]))
        return {
            "iterations": self.iterations,
            "step_seconds": step_max,
            "compute_seconds_max": compute_max, "compute_seconds_mean": compute_mean,
            "comm_seconds_max": comm_max, "comm_seconds_mean": comm_mean,
            "comm_percent": 100.0 * comm_max / step_max if step_max else 0.0,
            "messages_per_rank": msg_mean, "messages_max": msg_max,
            "bytes_per_rank": bytes_mean, "bytes_max": bytes_max,
            "collectives": {k: v / n for k, v in self.collectives.items()},
        }


class GradientReducer:
    """The sum of every rank's gradients over the replicas, in buckets, without blocking.

    The buckets are partition.gradient_buckets' (whole layers from the last down); each is
    posted (Iallreduce, in place) as
    soon as the backward pass has written its lowest layer, so that it travels while the
    earlier layers compute, and every rank posts the same buckets in the same order. The
    first bucket also carries the parameters' loss slot, just after the last layer's
    gradients: the batch's loss is known before any update.
    """

    def __init__(self, exchange, parameters, bucket_bytes):
        self.exchange, self.loss_slot = exchange, parameters.loss_slot
        spans, grads = parameters.spans, parameters.segment("grads")
        layer_bytes = [(stop - start) * parameters.dtype.itemsize for start, stop in spans]
        self.buckets, top = [], len(spans) - 1
        for low, _ in gradient_buckets(layer_bytes, bucket_bytes):
            start, stop = spans[low][0], spans[top][1]
            # The first bucket runs on into the loss slot, which follows the gradients.
            values = (parameters.gradients_and_loss()[start:] if not self.buckets
                      else grads[start:stop])
            self.buckets.append((low, top, values))
            top = low - 1
        self._requests = []
        self.watch = exchange.watch

    def layer_done(self, l):
        """Post the next bucket if layer l, now done, is its lowest; let the posted ones move.

        An MPI library without a progress thread (MPICH's default) advances a
        non-blocking collective only inside MPI calls: testing them between layers keeps
        the buckets travelling while the backward pass goes on.
        """
        if len(self._requests) < len(self.buckets) and self.buckets[len(self._requests)][0] == l:
            self._post(self.buckets[len(self._requests)][2])
        elif self._requests:
            MPI.Request.Testall(self._requests)

    def post_all(self):
        """Post every bucket not posted yet (a replica with no samples in this batch)."""
        while len(self._requests) < len(self.buckets):
            self._post(self.buckets[len(self._requests)][2])

    def _post(self, values):
        ex = self.exchange
        start = MPI.Wtime()
        self._requests.append(ex.replicas.Iallreduce(MPI.IN_PLACE, values, op=MPI.SUM))
        ex._count("allreduce")
        ex.seconds += MPI.Wtime() - start

    def finish(self, apply):
        """Wait for each bucket in turn and call apply(first_layer, last_layer) on it.

        Nothing is applied when the summed loss (known with the first bucket) is not
        finite: a replica's inputs or the training went wrong, and every rank sees it.
        """
        for request, (first, last, _) in zip(self._requests, self.buckets):
            self._wait(request, first)
            if np.isfinite(self.loss_slot[0]):
                apply(first, last)
        self._requests = []

    @watched("gradient allreduce")
    def _wait(self, request, l):
        """Wait for the bucket whose lowest layer is l."""
        start = MPI.Wtime()
        request.Wait()
        self.exchange.seconds += MPI.Wtime() - start


class ReplicaMemory:
    """Memory that the replicas of one model rank, all on one node, share.

    Each array is a file in SHARED_FOLDER (tmpfs) that the replicas map; once all have
    mapped it the file is unlinked, so the memory goes when the last map does: nothing to
    free collectively, nothing left behind. Both allocations are collective over the
    replicas, with the same size on each, and come zeroed. common(): one array that every
    replica maps (the parameters' values). own(): one array per replica, each mapped by
    all (the step's buffers): every replica lays them out alike, so one byte offset per
    replica (shifts()) finds any value of this rank's in the others'.
    """

    def __init__(self, exchange):
        self.comm = exchange.replicas
        self._views = {}            # id of an array own() made -> (it, every replica's)

    def common(self, n, dtype):
        """n values of dtype that every replica of this model rank maps (replica 0's file)."""
        return self._map(n, dtype, self.comm.Get_rank() == 0)[0]

    def own(self, n, dtype):
        """n values of dtype of this replica's own, which the others map too."""
        views = self._map(n, dtype, True)
        own = views[self.comm.Get_rank()]
        self._views[id(own)] = (own, views)
        return own

    def _map(self, n, dtype, creates):
        """Every replica's view of the files that those with creates=True make."""
        dtype = np.dtype(dtype)
        size = max(n, 1) * dtype.itemsize
        fd, path, error = -1, None, None
        if creates:
            try:
                fd, path = tempfile.mkstemp(prefix="ghostmlp-", dir=SHARED_FOLDER)
                os.posix_fallocate(fd, 0, size)     # a full tmpfs fails here, not at a first write
            except OSError as failure:
                error = f"{size:,} bytes of shared memory in {SHARED_FOLDER}: {failure}"
        paths, errors = zip(*self.comm.allgather((path, error)))
        if any(errors):
            self._discard(fd, path)
            raise MemoryError(f"replicas that share memory need {next(filter(None, errors))} "
                              "(or replica_update='allreduce')")
        views = []
        for other in filter(None, paths):
            with open(other, "r+b") as file:
                views.append(np.frombuffer(mmap.mmap(file.fileno(), size), dtype, n))
        self.comm.Barrier()                     # every replica has mapped every file
        self._discard(fd, path)
        return views

    @staticmethod
    def _discard(fd, path):
        if path is not None:
            os.unlink(path)
        if fd >= 0:
            os.close(fd)

    def shifts(self, array):
        """Bytes from `array` (made by own()) to the same array of each replica."""
        views = self._views[id(array)][1]
        return tuple(view.ctypes.data - array.ctypes.data for view in views)

    def free(self, array):
        """Forget `array` (made by own()): its memory goes with the last view of it."""
        del self._views[id(array)]


class ReplicaRows:
    """What a step needs to split its updates over replicas that share memory (see
    ghostmlp._step.Step): their count, this one's index, and the byte offsets from this
    rank's buffers (made by ReplicaMemory.own) to each replica's."""

    def __init__(self, memory, buffers_block):
        self.count, self.index = memory.comm.Get_size(), memory.comm.Get_rank()
        self.buffer_shifts = memory.shifts(buffers_block)


class StepExchange:
    """The exchanges that a plan's step (ghostmlp._step.Step) calls, over the buffers of one capacity.

    Each takes weight layer l and the batch B; the views of the buffers and the persistent
    requests over them are made once per (layer, B), and freed by free(). The step starts
    and waits them in compiled code (compiled()), or calls the methods below where it
    cannot: their waits are @watched calls, the compiled ones are marked in `inflight`, a
    record of the exchange's watch.
    """

    def __init__(self, exchange, layout, buffers, reducer=None, loss_slot=None):
        self.exchange, self.layout, self.buffers = exchange, layout, buffers
        self.loss_slot = loss_slot  # the parameters' (replicas that share memory sum it)
        self.reducer = reducer      # a GradientReducer across replicas, or None
        self.watch = exchange.watch     # its calls are the exchange's, for the watchdog
        self.last = len(layout.layers) - 1
        self._views = {}
        self._persistent = {}
        self._replica_sync = None      # (barrier, loss sum) of replicas that share memory
        self.inflight = np.zeros(3, np.int64)
        self.watch.add_record(self.inflight, WAIT_NAMES)

    def _view(self, kind, l, batch):
        key = (kind, l, batch)
        if key not in self._views:
            layer, b = self.layout.layers[l], self.buffers
            flat, rows = {"acts": (b.acts[l], layer.rows), "deltas": (b.deltas[l], layer.rows),
                          "own_deltas": (b.own_deltas[l], layer.n_own),
                          "inbox": (b.inbox, 2)}[kind]
            self._views[key] = b.view(flat, rows, batch)
        return self._views[key]

    def _requests(self, kind, l, batch):
        """The persistent requests of one exchange of layer l at batch B, made on first use
        (every rank of the exchange makes them at the same step: collectives among them)."""
        key = (kind, l, batch)
        if key not in self._persistent:
            ex, counts = self.exchange, self.layout.layers[l].counts
            if kind == "halo":
                made = ex.halo(self._view("acts", l, batch))
            elif kind == "reverse halo":
                made = ex.reverse_halo(self._view("deltas", l, batch),
                                       self._view("inbox", 0, batch))
            elif kind == "allgather":
                made = ex.allgather_rows(self._view("acts", l, batch), counts,
                                         everyone=l == self.last)
            else:
                made = ex.reduce_scatter_rows(self._view("deltas", l, batch),
                                              self._view("own_deltas", l, batch), counts)
            self._persistent[key] = made
        return self._persistent[key]

    def compiled(self, batch):
        """Per weight layer, (forward, backward): its exchanges at batch B as CompiledRequests
        for the step to start and wait itself, or None where the step calls the methods
        below: no such exchange, a blocking collective in place of a persistent one, or no
        entry points found. Collective: every rank of the replica binds a batch at the same
        step, and makes the layers' requests in the same order."""
        made = []
        for l, layer in enumerate(self.layout.layers):
            kinds = ({"halo": "halo", "gather": "allgather"}.get(layer.forward),
                     {"halo_exact": "reverse halo", "reduce_scatter": "reduce_scatter"}.get(
                         layer.backward))
            made.append(tuple(None if kind is None else self._compiled(kind, l, batch)
                              for kind in kinds))
        return made

    def _compiled(self, kind, l, batch):
        persistent = self._requests(kind, l, batch)
        if persistent.run is not None or COMPILED_ENTRY_POINTS is None:
            return None
        return CompiledRequests(persistent, COMPILED_WAITS[kind], self.inflight,
                                COMPILED_ENTRY_POINTS)

    def replica_requests(self):
        """(barrier, loss sum) of replicas that share memory, as CompiledRequests (each
        None where the step calls replica_sync and loss_sum below). Collective over the
        replicas: made once, at the step's binding."""
        barrier, loss = self._replica_persistent()
        if COMPILED_ENTRY_POINTS is None:
            return None, None
        return tuple(None if persistent.run is not None else CompiledRequests(
            persistent, COMPILED_WAITS[kind], self.inflight, COMPILED_ENTRY_POINTS)
            for persistent, kind in ((barrier, "replica barrier"), (loss, "loss sum")))

    def _replica_persistent(self):
        if self._replica_sync is None:
            self._replica_sync = (self.exchange.replica_barrier(),
                                  self.exchange.replica_loss_sum(self.loss_slot))
        return self._replica_sync

    def failed(self, error):
        self.exchange.failed(error)

    def free(self):
        """Free every persistent request (none may be active); leave the watch."""
        for persistent in (*self._persistent.values(), *(self._replica_sync or ())):
            persistent.free()
        self._persistent, self._replica_sync = {}, None
        self.watch.remove_record(self.inflight)

    @watched("replica barrier")
    def replica_sync(self, l, batch):
        self.exchange.start(self._replica_persistent()[0], finish=True)

    @watched("replicas' loss allreduce")
    def loss_sum(self, l, batch):
        self.exchange.start(self._replica_persistent()[1], finish=True)

    def post_halo(self, l, batch):
        self.exchange.start(self._requests("halo", l, batch))

    @watched("halo wait")
    def wait_halo(self, l, batch):
        self.exchange.wait(self._requests("halo", l, batch))

    def gather(self, l, batch):
        self._run("allgather", l, batch)

    def reverse_halo(self, l, batch):
        """The ghost rows' deltas back to their owners, into the buffers' inbox (the step adds them)."""
        self._run("reverse halo", l, batch)

    def reduce_scatter(self, l, batch):
        self._run("reduce_scatter", l, batch)

    @watched()
    def _run(self, op, l, batch):
        self.exchange.start(self._requests(op, l, batch), finish=True)

    def gradients_done(self, l):
        self.reducer.layer_done(l)
