"""Serial, dense and ghost plans: which pieces of every layer a rank holds and which exchanges its step needs."""
import numpy as np

from ghostmlp._kernels import IDENTITY, SOFTMAX
from ghostmlp.params import Piece
from ghostmlp.partition import blocks_of_rank, ghost_inputs, rank_bounds, slice_bounds


class LayerPlan:
    """Weight layer l's plan on this rank (the neurons of network layer l + 1).

    Own neurons [start, stop) (none on a master rank); its activation and delta buffers
    hold `rows` rows, the own ones from `own_row`: a ghost hidden layer stores its two
    ghost rows around its own (halo), every other layer the whole layer. counts: own rows
    per working rank. forward: the exchange after the pieces ("none", "halo", "gather", or
    "wrap": the halo of a ring of one working rank, whose ghosts are copies of its own
    boundary rows); backward: how the own deltas come from the next layer's ("local",
    "reduce_scatter", "halo_exact", "halo_local", or "wrap_exact": halo_exact on a ring of
    one, the ghosts' deltas added locally). activation: what the pieces apply; post_softmax: a
    softmax over the gathered layer follows (an output split into pieces).
    """

    def __init__(self, size, start, stop, halo, counts):
        self.size, self.start, self.stop, self.halo, self.counts = size, start, stop, halo, counts
        self.n_own = stop - start
        self.rows = self.n_own + 2 if halo else size
        self.own_row = 1 if halo else start
        self.forward, self.backward = "none", "local"
        self.activation, self.post_softmax = IDENTITY, False
        self.pieces = []        # (inputs, in_row, start, stop, out_row, init_fan_out)


class Layout:
    """The plan of a network of `sizes` (input first) on rank `rank` of `ranks`.

    connectivity "dense": every working rank owns a contiguous slice of every layer
    (sizes differing by at most one); "ghost": each layer cut into `blocks` blocks, whole
    blocks per working rank, block k seeing block k of the previous layer and its two
    ghost neurons (the first hidden layer sees the whole input). master: rank 0 holds no
    neurons and only takes part in the output gather. One rank, dense: the serial plan,
    with no exchange at all. activations: the codes of the hidden and output layers.
    """

    def __init__(self, sizes, activations, connectivity="dense", blocks=1, ranks=1, rank=0,
                 master=False, ghost_gradients="exact"):
        self.sizes, self.ranks = list(sizes), ranks
        self.workers = ranks - bool(master)
        self.worker_rank = rank - bool(master)
        self.is_worker = self.worker_rank >= 0
        self.ghost = connectivity == "ghost" and blocks > 1
        parts = blocks if self.ghost else self.workers
        n_layers = len(sizes) - 1
        self.layers = []
        for l, size in enumerate(sizes[1:]):
            is_output = l == n_layers - 1
            bounds = [rank_bounds(size, parts, self.workers, r) for r in range(self.workers)]
            start, stop = bounds[self.worker_rank] if self.is_worker else (0, 0)
            layer = LayerPlan(size, start, stop, self.ghost and not is_output,
                              [b - a for a, b in bounds])
            if self.is_worker:
                layer.pieces = self._pieces(l, layer, blocks)
            if is_output:               # its deltas come from the loss, on every rank
                layer.forward = "gather" if ranks > 1 else "none"     # a master included
            elif self.is_worker and layer.halo:
                # a ring of one working rank: its ghosts are its own boundary rows, copied
                alone = self.workers == 1
                layer.forward = "wrap" if alone else "halo"
                layer.backward = ("halo_local" if ghost_gradients != "exact"
                                  else "wrap_exact" if alone else "halo_exact")
            elif self.is_worker and self.workers > 1:
                layer.forward, layer.backward = "gather", "reduce_scatter"
            split = layer.forward == "gather" or len(layer.pieces) > 1
            if is_output and activations[l] == SOFTMAX and split:
                layer.post_softmax = True       # softmax needs the whole layer
            else:
                layer.activation = activations[l]
            self.layers.append(layer)

    def _pieces(self, l, layer, blocks):
        if not self.ghost or l == 0:
            return [(range(self.sizes[l]), 0, layer.start, layer.stop, 0, layer.size)]
        previous = self.layers[l - 1]
        pieces = []
        for block in blocks_of_rank(blocks, self.workers, self.worker_rank):
            start, stop = slice_bounds(layer.size, blocks, block)
            inputs = ghost_inputs(previous.size, blocks, block)
            # inputs[1] is the block's first own neuron, at halo row 1 + its offset.
            pieces.append((inputs, inputs[1] - previous.start, start, stop,
                           start - layer.start, stop - start))
        return pieces

    def new_pieces(self):
        """Fresh Piece objects of every layer (for a ghostmlp.params.Parameters)."""
        return [[Piece(*spec) for spec in layer.pieces] for layer in self.layers]


ALIGN_VALUES = 16      # values of float32 in a 64-byte line (float64: two lines)


class Buffers:
    """The neuron-major activation and delta buffers of a plan for batches up to `capacity`.

    acts[l], deltas[l]: rows * capacity values; own_deltas[l]: n_own * capacity where the
    own deltas are reduced from partial sums (else None); inputs_t: X.T; scratch and
    inbox: 2 * capacity values each (softmax columns, incoming ghost deltas). All are
    views of one block of values, `block`, from allocate(n, dtype) (default numpy.empty):
    plans alike lay it out alike.
    """

    def __init__(self, layout, capacity, dtype, allocate=np.empty):
        self.capacity = capacity
        layers = layout.layers
        sizes = ([layer.rows * capacity for layer in layers] * 2
                 + [layer.n_own * capacity if layer.backward == "reduce_scatter" else 0
                    for layer in layers]
                 + [layout.sizes[0] * capacity, 2 * capacity, 2 * capacity])
        # Each buffer starts on a 64-byte line: no two share one.
        padded = [-(-size // ALIGN_VALUES) * ALIGN_VALUES for size in sizes]
        self.block = allocate(sum(padded), dtype)
        starts = np.cumsum([0] + padded)
        views = [self.block[start:start + size] for start, size in zip(starts, sizes)]
        n = len(layers)
        self.acts, self.deltas = views[:n], views[n:2 * n]
        self.own_deltas = [view if layer.backward == "reduce_scatter" else None
                           for view, layer in zip(views[2 * n:3 * n], layers)]
        self.inputs_t, self.scratch, self.inbox = views[3 * n:]

    @staticmethod
    def view(flat, rows, batch):
        """flat's first rows * batch values as [rows, batch]."""
        return flat[:rows * batch].reshape(rows, batch)
