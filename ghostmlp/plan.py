"""The layout planner: a cost model of one training step for every layout of a network on P ranks, and the fastest that fits."""
import dataclasses
import shlex
import sys

import numpy as np

from ghostmlp import bench, optim
from ghostmlp._kernels import FUSED_ROW_MIN_BYTES, SIGMOID, SOFTMAX
from ghostmlp.engine import BUCKET_BYTES
from ghostmlp.layout import Layout
from ghostmlp.machine import MACHINE_VARIABLE, Machine, MissingParameters, load_machine
from ghostmlp.network import ACTIVATIONS
from ghostmlp.params import DTYPES
from ghostmlp.partition import check_layout, edge_count, gradient_buckets, slice_sizes
from ghostmlp.validate import check_count, check_positive

ACTIVATION_NAMES = {code: name for name, code in ACTIVATIONS.items()}
SECONDS = ("gemm", "elementwise", "optimizer", "overhead", "halo", "halo_exposed", "gather",
           "reduce_scatter", "allreduce", "allreduce_exposed")


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A layout of P = D M ranks: D replicas (grid[0]) of M model ranks (grid[1]) each;
    connectivity "dense" or "ghost" with `blocks` = K blocks per layer; master: rank 0 of
    each replica holds no neurons (M - 1 working ranks); replica_update: how replicas
    update (see ghostmlp.Network), "shared" for replicas on one node."""

    grid: tuple
    connectivity: str = "dense"
    blocks: int = 1
    master: bool = False
    replica_update: str = "allreduce"

    @property
    def shared(self):
        return self.replica_update == "shared" and self.grid[0] > 1

    @property
    def workers(self):
        return self.grid[1] - self.master

    @property
    def ghost(self):
        return self.connectivity == "ghost" and self.blocks > 1

    def options(self):
        """The layout as ghostmlp.Network arguments."""
        return {"grid": tuple(self.grid), "connectivity": self.connectivity,
                "blocks": self.blocks if self.connectivity == "ghost" else None,
                "master": self.master, "replica_update": self.replica_update}

    def __str__(self):
        return (f"{self.grid[0]} x {self.grid[1]} {self.connectivity}"
                + (f" K={self.blocks}" if self.ghost else "")
                + (" + master" if self.master else "") + (" shared" if self.shared else ""))


@dataclasses.dataclass
class Prediction:
    """One step (forward + loss + backward + update of one minibatch) on the busiest rank.

    compute_s: GEMMs, elementwise passes, the optimizer's pass; comm_s: communication
    left exposed after overlap; seconds: the breakdown (SECONDS; "halo" and "allreduce"
    in full, their "_exposed" parts in comm_s); counts: per step on that rank, point-to-
    point messages sent and collective calls by kind (as exchange.Exchange counts them);
    memory_bytes: the parameters, optimizer state and step buffers on that rank.
    """

    layout: Candidate
    batch_share: int
    compute_s: float
    comm_s: float
    memory_bytes: float
    fits: bool
    parameters: int
    connections: int
    seconds: dict
    counts: dict

    @property
    def total_s(self):
        return self.compute_s + self.comm_s


def overhead_kinds(ranks, one_node=False):
    """{kind: Candidate}: the layouts whose step overheads a machine file holds (measured by
    calibrate.step_overheads on `ranks` ranks): one rank, and on more, model parallel
    dense and ghost (K = ranks) and data parallel (also with shared memory, on one node)."""
    kinds = {"one rank": Candidate((1, 1))}
    if ranks > 1:
        kinds.update({"dense": Candidate((1, ranks)),
                      "ghost": Candidate((1, ranks), "ghost", ranks),
                      "data": Candidate((ranks, 1))})
        if one_node:
            kinds["data shared"] = Candidate((ranks, 1), replica_update="shared")
    return kinds


def step_overhead(machine, layout, n_layers):
    """Seconds of ghostmlp's own step beyond the model's terms, from the machine file's
    step_overheads (none there: 0): the model-parallel kind's, plus what a data-parallel
    step adds to a one-rank step where there are replicas too (replicas that share memory:
    their own kind's, where the file has it)."""
    table = machine.data.get("step_overheads") or {}

    def cost(kind):
        entry = table.get(kind)
        return entry["step_s"] + n_layers * entry["layer_s"] if entry else 0.0

    replicas, model = layout.grid
    data = "data shared" if layout.shared and "data shared" in table else "data"
    if model == 1:
        return cost(data if replicas > 1 else "one rank")
    own = cost("ghost" if layout.ghost else "dense")
    return own + (max(0.0, cost(data) - cost("one rank")) if replicas > 1 else 0.0)


def enumerate_layouts(sizes, batch, ranks, blocks=None, connectivity=None, master=None,
                      ranks_per_node=1):
    """Every valid Candidate for `ranks` ranks: each grid D x M = ranks with D <= batch,
    dense and ghost (K = the working ranks, and `blocks` when given), without and with a
    master (master=True/False keeps only those), valid by partition.check_layout; replicas
    update by allreduce, and also by shared memory when all ranks fit on one node of
    ranks_per_node and there is no master."""
    found = []
    for replicas in (d for d in range(1, ranks + 1) if ranks % d == 0 and d <= batch):
        model = ranks // replicas
        for with_master in (False, True) if master is None else (bool(master),):
            workers = model - with_master
            if workers < 1:
                continue
            options = [("dense", 1)] if connectivity in (None, "dense") else []
            if connectivity in (None, "ghost"):
                options += [("ghost", k) for k in sorted({workers, blocks or workers}) if k > 1]
            for kind, k in options:
                try:
                    check_layout(sizes, workers, kind, k)
                except ValueError:
                    continue
                found.append(Candidate((replicas, model), kind, k, with_master))
                if replicas > 1 and not with_master and ranks <= ranks_per_node:
                    found.append(Candidate((replicas, model), kind, k, False, "shared"))
    return found


def resolve_optimizer(optimizer, momentum=0.0):
    """An optim.Optimizer from one, or from its name ("sgd" with `momentum`, "adam", "adamw")."""
    if isinstance(optimizer, optim.Optimizer):
        return optimizer
    if momentum and optimizer != "sgd":
        raise ValueError(f"momentum is an option of sgd, not of {optimizer!r}")
    if optimizer == "sgd":
        return optim.SGD(optim.DEFAULT_LEARNING_RATE, momentum=momentum)
    if optimizer in optim.OPTIMIZERS:
        return optim.OPTIMIZERS[optimizer]()
    raise ValueError(f"optimizer must be one of {tuple(optim.OPTIMIZERS)}, got {optimizer!r}")


def predict(sizes, batch, layout, machine, dtype="float32", optimizer="sgd",
            ghost_gradients="exact", bucket_bytes=BUCKET_BYTES, memory_per_rank=None):
    """The Prediction of one step of `sizes` (input first) at global batch B on `layout`.

    The busiest rank is working rank 0 of replica 0 (the first slices, blocks and batch
    share hold the extra items); its plan is ghostmlp.layout.Layout's. With b = ⌈B/D⌉
    samples, s the itemsize, BW the machine's bandwidth and, for each piece of weight
    layer l on that rank, n_in inputs and n_own outputs:

    compute = Σ_l Σ_pieces [G(b, n_own, n_in) + G(b, n_in, n_own) (l > 0) + G(n_own, n_in, b)]
              + 2 s V / BW + s N (2 + g + 2 S) / BW (the optimizer's pass, unless fused)
        G: Machine.gemm_seconds (forward, delta, gradient GEMMs); V: the values of the
        elementwise passes (input transpose n_0 b; per layer activation and bias gradient,
        n_own b each; act' of every hidden layer, n_own b; softmax of a split output and the
        loss over the whole output, n_out b each); N: this rank's weights and biases; g = 1
        with a gradient buffer (D > 1, or an optimizer that needs one); S: state buffers
        (SGD momentum 1, Adam/AdamW 2); an activation's pass takes at least its values
        times the machine's time per value (Machine.activation_seconds). Plain SGD on one
        replica updates inside the gradient GEMM: no pass; at batch 1 (no weight decay)
        its large layers also make their deltas in that sweep (the fused row pass): no
        delta GEMM (_Ledger.backward). Where the machine's bandwidth for passes that fit
        in the cache is known, passes of up to its cache_bytes use it
        (Machine.stream_seconds); G streams its large operand from memory when this
        rank's weights exceed its share of the last-level cache (Machine.gemm_seconds).
        Plus ghostmlp's own costs per step and layer (step_overhead).
        Replicas that share memory (layout.shared): each computes the gradient of 1/D of
        every piece's rows over the whole batch, G(n_own, ⌈n_in/D⌉, b) once per replica,
        its optimizer pass covers N/D (plain SGD: none), the replicas hold one copy of W, b
        and the state (1/D of it a rank), and no gradient buffer where the optimizer
        fuses.
    comm (exposed) = Σ forward [allgather(W, n_l b s) per gathered hidden layer;
                                max(0, p2p(b s) - interior compute) per halo layer]
                     + allgather(M, n_out b s) when M > 1
                     + Σ backward [reduce_scatter(W, n_l b s) | p2p(b s) for exact ghosts]
                     + data parallel (D > 1): allreduce(D, bucket) of each gradient bucket,
                       posted when its lowest layer's backward ends, one after another;
                       of what the backward pass would hide, the machine's overlap share
                       is hidden (all of it unless measured); shared memory instead: an
                       all-reduce of the loss and a barrier (allreduce(D, s) each).
        The interior of a halo layer is its forward GEMM time × (n_own - 2) / n_own (the
        two boundary neurons go first); W working ranks, M ranks per replica.
    memory = s [N ((1 + S) / D' + g) + b (Σ_l (2 rows_l + n_own_l [reduce-scattered]) + 2 n_0 + 4)]
        D' = D for replicas that share memory, else 1; rows_l: the whole layer, or
        n_own + 2 for a ghost layer; fits: memory + the machine's baseline per rank
        (interpreter, libraries) <= its memory per rank.
    """
    layout = layout if isinstance(layout, Candidate) else Candidate(**layout)
    replicas, model = layout.grid
    if replicas < 1 or batch < 1:
        raise ValueError(f"need a grid of at least one replica and a batch of at least 1, "
                         f"got {layout.grid} and {batch}")
    check_layout(sizes, layout.workers, layout.connectivity, layout.blocks)
    b = slice_sizes(batch, replicas)[0]
    opt = resolve_optimizer(optimizer)
    plan = Layout(sizes, [SIGMOID] * (len(sizes) - 2) + [SOFTMAX], layout.connectivity,
                  layout.blocks, model, int(layout.master), layout.master, ghost_gradients)
    step = _Ledger(machine, dtype, plan, b)
    step.stream(sizes[0] * b + sizes[-1] * b)       # input transpose; loss and output deltas
    step.forward(model, layout.workers)
    plain_sgd = (isinstance(opt, optim.SGD) and not opt.momentum
                 and (replicas == 1 or layout.shared))
    split = replicas if layout.shared else 1
    ready = step.backward(layout.workers, split,
                          fused_rows=plain_sgd and not opt.weight_decay and b == 1 and split == 1)
    s, n = step.itemsize, sum(step.params)
    grads = (replicas > 1 and not layout.shared) or not opt.fuses_gradient
    states = len(opt.state_names)
    if layout.shared:
        step.share_rows(replicas)
    elif replicas > 1:
        step.allreduce(replicas, ready, bucket_bytes)
    if not plain_sgd:
        step.seconds["optimizer"] += machine.stream_seconds(
            s * n * (2 + grads + 2 * states) / split)
    step.seconds["overhead"] = step_overhead(machine, layout, len(sizes) - 1)
    buffers = b * (sum(2 * layer.rows + (layer.n_own if layer.backward == "reduce_scatter"
                                         else 0) for layer in plan.layers) + 2 * sizes[0] + 4)
    memory = s * (n * ((1 + states) / split + grads) + buffers)
    limit = memory_per_rank or machine.memory_per_rank
    connections = sum(edge_count(n_in, n_out, layout.blocks if layout.ghost else 1, l == 0)
                      for l, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])))
    seconds = step.seconds
    compute = (seconds["gemm"] + seconds["elementwise"] + seconds["optimizer"]
               + seconds["overhead"])
    exposed = sum(seconds[k] for k in ("gather", "reduce_scatter", "halo_exposed",
                                       "allreduce_exposed"))
    return Prediction(layout, b, compute, exposed, memory, memory + machine.baseline <= limit,
                      n, connections, seconds, step.counts)


class _Ledger:
    """Seconds (by SECONDS' kinds) and counts of one predicted step: a rank's plan, b samples."""

    def __init__(self, machine, dtype, plan, batch):
        self.machine, self.dtype, self.itemsize = machine, dtype, np.dtype(dtype).itemsize
        self.layers, self.batch = plan.layers, batch
        # (n_in, n_out) of every piece of every layer; weights and biases per layer
        self.pieces = [[(len(p[0]), p[3] - p[2]) for p in layer.pieces] for layer in self.layers]
        self.params = [sum(n_in * n_out + n_out for n_in, n_out in layer) for layer in self.pieces]
        self.seconds = dict.fromkeys(SECONDS, 0.0)
        self.weight_bytes = self.itemsize * sum(self.params)    # swept by every step
        self.counts = {"messages": 0, "allgather": 0, "reduce_scatter": 0, "allreduce": 0}

    def gemm(self, m, n, k, accumulate=False):
        t = self.machine.gemm_seconds(m, n, k, self.dtype, accumulate, self.weight_bytes)
        self.seconds["gemm"] += t
        return t

    def stream(self, values):
        """An elementwise pass: each of the values read and written once."""
        t = self.machine.stream_seconds(2 * self.itemsize * values)
        self.seconds["elementwise"] += t
        return t

    def exchange(self, kind, operation, ranks, nbytes):
        t = self.machine.comm_seconds(operation, ranks, nbytes)
        self.seconds[kind] += t
        if operation == "p2p":
            self.counts["messages"] += 2        # two sends (and two receives) per exchange
        else:
            self.counts[operation] += 1
        return t

    def forward(self, model, workers):
        """Every layer's pieces, then its halo (hidden behind the interior) or gather."""
        b, s = self.batch, self.itemsize
        for l, layer in enumerate(self.layers):
            forward = sum(self.gemm(b, n_out, n_in) for n_in, n_out in self.pieces[l])
            passed = self.stream(layer.n_own * b + (layer.rows * b if layer.post_softmax else 0))
            # the activations' arithmetic, where it outlasts their pass through memory
            computed = (self.machine.activation_seconds(ACTIVATION_NAMES[layer.activation],
                                                        layer.n_own * b, self.dtype)
                        + self.machine.activation_seconds("softmax", layer.rows * b, self.dtype)
                        * layer.post_softmax)
            self.seconds["elementwise"] += max(0.0, computed - passed)
            if layer.forward == "halo":
                halo = self.exchange("halo", "p2p", 2, b * s)
                interior = forward * max(layer.n_own - 2, 0) / layer.n_own
                self.seconds["halo_exposed"] += max(0.0, halo - interior)
            elif layer.forward == "gather":
                last = l == len(self.layers) - 1
                self.exchange("gather", "allgather", model if last else workers,
                              layer.size * b * s)

    def backward(self, workers, split=1, fused_rows=False):
        """The layers from the last: gradient, previous deltas and their exchange, act'.

        split: replicas that share memory (1: none), each computing 1/split of every
        piece's gradient rows over all of their samples.

        fused_rows (plain SGD on one replica at batch 1): a layer of one piece and at least
        FUSED_ROW_MIN_BYTES of weights whose previous layer's deltas stay local or are
        reduce-scattered makes its deltas in the update's sweep over W (the step's fused
        row pass): no delta GEMM of its own. Returns ready[l]: when layer l's gradient is
        done, from the start of the backward.
        """
        b, s = self.batch, self.itemsize
        ready, clock = [0.0] * len(self.layers), 0.0
        for l in reversed(range(len(self.layers))):
            layer = self.layers[l]
            clock += sum(self.gemm(n_out, -(-n_in // split), b, accumulate=True)
                         for n_in, n_out in self.pieces[l] for _ in range(split))
            clock += self.stream(layer.n_own * b)                       # bias gradient
            if l > 0:
                previous = self.layers[l - 1]
                ghosts = 2 if previous.backward == "halo_local" else 0   # ghosts get no delta
                fused = (fused_rows and len(self.pieces[l]) == 1
                         and previous.backward in ("local", "reduce_scatter")
                         and self.pieces[l][0][0] * self.pieces[l][0][1] * s
                         >= FUSED_ROW_MIN_BYTES)
                if not fused:
                    clock += sum(self.gemm(b, n_in - ghosts, n_out)
                                 for n_in, n_out in self.pieces[l])
                if previous.backward == "reduce_scatter":
                    clock += self.exchange("reduce_scatter", "reduce_scatter", workers,
                                           previous.size * b * s)
                elif previous.backward == "halo_exact":
                    t = self.exchange("halo", "p2p", 2, b * s)
                    self.seconds["halo_exposed"] += t
                    clock += t
                clock += self.stream(previous.n_own * b)                # x act'
            ready[l] = clock
        return ready

    def share_rows(self, replicas):
        """The waits of replicas that share memory: the loss's sum once the deltas are
        written and a barrier after the update (each as long as an all-reduce of one value)."""
        t = self.exchange("allreduce", "allreduce", replicas, self.itemsize)
        self.seconds["allreduce"] += t
        self.seconds["allreduce_exposed"] += 2 * t
        self.counts["barrier"] = 1

    def allreduce(self, replicas, ready, bucket_bytes):
        """The gradient buckets all-reduced one after another, each from when it is ready;
        of what the backward pass hides, only the machine's overlap share is hidden."""
        s, finish, total = self.itemsize, 0.0, 0.0
        buckets = gradient_buckets([s * n for n in self.params], bucket_bytes)
        for j, (lowest, nbytes) in enumerate(buckets):
            nbytes += s if j == 0 else 0            # the first bucket carries the loss
            t = self.exchange("allreduce", "allreduce", replicas, nbytes)
            finish, total = max(ready[lowest], finish) + t, total + t
        overlapped = max(0.0, finish - ready[0])
        self.seconds["allreduce_exposed"] = total - self.machine.overlap * (total - overlapped)


@dataclasses.dataclass
class Recommendation:
    """layout: the fastest Candidate that fits; table: every prediction, fastest first;
    unpredicted: (Candidate, reason) of layouts the machine file cannot predict."""

    layout: Candidate
    table: list
    unpredicted: list


def recommend(sizes, batch, ranks, machine=None, dtype="float32", optimizer="sgd", blocks=None,
              connectivity=None, master=None, ghost_gradients="exact", memory_per_rank=None):
    """The Recommendation for `sizes` at global batch `batch` on `ranks` ranks.

    machine: a Machine, a machine file's path, or None for $GHOSTMLP_MACHINE. blocks,
    connectivity, master: see enumerate_layouts; memory_per_rank overrides the machine's.
    """
    machine = machine if isinstance(machine, Machine) else load_machine(machine)
    candidates = enumerate_layouts(sizes, batch, ranks, blocks, connectivity, master,
                                   machine.ranks_per_node)
    if not candidates:
        raise ValueError(f"no valid layout of {'-'.join(map(str, sizes))} on {ranks} rank(s) "
                         f"at batch {batch}" + (f" with connectivity {connectivity}"
                                                if connectivity else ""))
    table, unpredicted = [], []
    for candidate in candidates:
        try:
            table.append(predict(sizes, batch, candidate, machine, dtype, optimizer,
                                 ghost_gradients, memory_per_rank=memory_per_rank))
        except MissingParameters as error:
            unpredicted.append((candidate, str(error)))
    if not table:
        raise MissingParameters(unpredicted[0][1])
    table.sort(key=lambda p: p.total_s)
    fitting = [p for p in table if p.fits]
    if not fitting:
        limit = memory_per_rank or machine.memory_per_rank
        least = min(p.memory_bytes for p in table) + machine.baseline
        raise ValueError(f"no layout of {'-'.join(map(str, sizes))} on {ranks} rank(s) fits "
                         f"in {limit / 2**20:,.0f} MiB per rank (the smallest needs "
                         f"{least / 2**20:,.0f} MiB)")
    return Recommendation(fitting[0].layout, table, unpredicted)


def format_table(recommendation):
    """Lines of text: every prediction (ms per step, MiB per rank), then the recommendation."""
    header = ("layout", "samples", "connections", "compute ms", "comm ms", "total ms",
              "MiB/rank", "fits")
    rows = [(str(p.layout), str(p.batch_share), f"{p.connections:,}", f"{p.compute_s * 1e3:.4g}",
             f"{p.comm_s * 1e3:.4g}", f"{p.total_s * 1e3:.4g}",
             f"{p.memory_bytes / 2**20:,.1f}", "yes" if p.fits else "no")
            for p in recommendation.table]
    widths = [max(len(row[i]) for row in [header] + rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i == 0 else cell.rjust(w)
                       for i, (cell, w) in enumerate(zip(row, widths))) for row in [header] + rows]
    lines += [f"not predicted: {candidate} ({reason})"
              for candidate, reason in recommendation.unpredicted]
    return lines + [f"recommended: {recommendation.layout}: "
                    f"ghostmlp.Network(**{recommendation.layout.options()})"]


# ------------------------------------------------------------------ command line

def add_arguments(parser):
    """The options of `ghostmlp plan`."""
    network = parser.add_mutually_exclusive_group()
    network.add_argument("--sizes", type=int, nargs="+", help="neurons per layer, input first")
    network.add_argument("--model", choices=sorted(bench.MODELS),
                         help="one of the paper's Table I models")
    parser.add_argument("--batch", type=int, default=1, help="global minibatch B (1)")
    parser.add_argument("--ranks", type=int, help="P (default: the ranks running the command)")
    parser.add_argument("--machine", help=f"machine file (default: ${MACHINE_VARIABLE})")
    parser.add_argument("--dtype", choices=DTYPES, default="float32")
    parser.add_argument("--optimizer", choices=tuple(optim.OPTIMIZERS), default="sgd")
    parser.add_argument("--momentum", type=float, default=0.0, help="sgd's momentum (0)")
    parser.add_argument("--blocks", type=int, help="also ghost layouts with this fixed K")
    parser.add_argument("--connectivity", choices=("dense", "ghost"),
                        help="only this connectivity (default: both)")
    parser.add_argument("--ghost-gradients", choices=("exact", "local"), default="exact")
    parser.add_argument("--memory", type=float, help="MiB per rank (default: the machine file's)")
    parser.add_argument("--calibrate", action="store_true",
                        help="measure this machine (under mpiexec: its communication too) and "
                             "write a machine file")
    parser.add_argument("--quick", action="store_true", help="with --calibrate: fewer, shorter "
                                                             "measurements (a rough file)")
    parser.add_argument("--output", default="machine.json", help="with --calibrate (machine.json)")


def check_arguments(args):
    """Raise a ValueError naming the first option of add_arguments out of its range."""
    for size in args.sizes or ():
        check_count("--sizes", size)
    check_count("--batch", args.batch)
    for option in ("ranks", "blocks"):
        if getattr(args, option) is not None:
            check_count(f"--{option}", getattr(args, option))
    check_positive("--momentum", args.momentum, allow_zero=True, upper=1)
    if args.memory is not None:
        check_positive("--memory", args.memory)


def run(args, comm, say, agreed=lambda what, step: step()):
    """`ghostmlp plan`: --calibrate writes a machine file; with --sizes or --model, every
    layout's predicted step and the recommendation. comm: None when serial; agreed(what,
    step): step() with its failure on one rank raised on every rank (the command's
    ghostmlp.cli_agree.Agreement.run)."""
    check_arguments(args)
    machine = None
    if args.calibrate:
        from ghostmlp import calibrate
        size = comm.Get_size() if comm is not None else 1
        command = ((f"mpiexec -n {size} " if size > 1 else "")
                   + shlex.join(["ghostmlp", *sys.argv[1:]]))
        data = calibrate.calibrate(comm, quick=args.quick, command=command, log=say)

        def write():
            if comm is None or comm.Get_rank() == 0:
                calibrate.write(data, args.output)

        agreed("writing the machine file", write)
        say(f"wrote {args.output}")
        machine = Machine(data, args.output)
        if args.sizes is None and args.model is None:
            return
    sizes = args.sizes or (bench.MODELS[args.model] if args.model else None)
    if sizes is None:
        raise ValueError("give --sizes N N ... or --model S|M|L (or --calibrate)")
    machine = machine or load_machine(args.machine)
    ranks = args.ranks or (comm.Get_size() if comm is not None else 1)
    result = recommend(sizes, args.batch, ranks, machine, args.dtype,
                       resolve_optimizer(args.optimizer, args.momentum), args.blocks,
                       args.connectivity, ghost_gradients=args.ghost_gradients,
                       memory_per_rank=args.memory * 2**20 if args.memory else None)
    say(f"{'-'.join(map(str, sizes))} on {ranks} rank(s), batch {args.batch}, {args.dtype}, "
        f"{args.optimizer}; machine {machine.name}; predicted per step on the busiest rank")
    for line in format_table(result):
        say(line)
