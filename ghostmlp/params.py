"""The distributed parameters: this rank's pieces of every layer's W and b, their gradients and optimizer state, in two flat blocks."""
import math

import numpy as np

# SeedSequence spawn key (INIT_STREAM, layer, neuron) draws one neuron's incoming weights.
INIT_STREAM = 1
DTYPES = ("float32", "float64")     # what the kernels compute in


class Piece:
    """One block of a layer on this rank: W[n_in, n_out] over the given input neurons.

    inputs: global indices of the previous layer's neurons, in weight-row order; in_row:
    their first row in the layer's input buffer; start, stop: the global output neurons;
    out_row: their first row among this rank's own rows; init_fan_out: the fan-out of
    Glorot's bound. weights, bias, grad_weights, grad_bias (None without gradients) and
    state (one (W-shaped, b-shaped) pair per optimizer state name) are views of the
    parameters' blocks, at `offset` in each of their segments.
    """

    def __init__(self, inputs, in_row, start, stop, out_row, init_fan_out):
        self.inputs = np.asarray(inputs)
        self.n_in, self.n_out = len(self.inputs), stop - start
        self.in_row, self.start, self.stop, self.out_row = in_row, start, stop, out_row
        self.init_fan_out = init_fan_out
        self.all_inputs = bool(np.array_equal(self.inputs, np.arange(self.n_in)))
        self.offset = 0
        self.weights = self.bias = self.grad_weights = self.grad_bias = None
        self.state = []

    @property
    def size(self):
        """Values of W and b together."""
        return self.n_in * self.n_out + self.n_out

    def columns(self, n_in):
        """Index of the inputs among n_in neurons: a slice when they are all of them, in order."""
        return slice(None) if self.all_inputs and self.n_in == n_in else self.inputs


class Parameters:
    """Every piece's W, b, gradients and optimizer state as views of two flat blocks.

    `values` holds equal segments "weights", then one per optimizer state name; `own`
    holds "grads" (when gradients=True, or after add_gradients()), then one loss value
    (`loss_slot`, reduced with the gradients: right after the last layer's, so the first
    bucket of a reduction carries it). In each segment the pieces' (W, b) pairs follow
    layer by layer, so a layer's values are contiguous in every segment (spans[l]).
    step_count counts the optimizer's updates. layers[l]: this rank's pieces of weight
    layer l (0 = input to first hidden); fan_ins[l]: the full fan-in of layer l;
    allocate(n, dtype): where `values` lies, zeroed (default numpy.zeros; replicas that
    share memory pass one block for all of them); `own` is this rank's alone.
    """

    def __init__(self, layers, fan_ins, dtype, state_names=(), gradients=False,
                 allocate=np.zeros):
        self.layers, self.fan_ins, self.dtype = layers, list(fan_ins), np.dtype(dtype)
        self.state_names = tuple(state_names)
        self.segment_size = sum(piece.size for pieces in layers for piece in pieces)
        self.values = allocate((1 + len(self.state_names)) * self.segment_size, self.dtype)
        self._bases = {name: (self.values, i * self.segment_size)
                       for i, name in enumerate(("weights",) + self.state_names)}
        self.step_count = 0
        self.spans, offset = [], 0
        for pieces in layers:
            first = offset
            for piece in pieces:
                piece.offset = offset
                piece.weights, piece.bias = self._pair("weights", offset, piece)
                piece.state = [self._pair(name, offset, piece) for name in self.state_names]
                offset += piece.size
            self.spans.append((first, offset))
        self._own_block(gradients)

    def _own_block(self, gradients):
        """Make `own`: the gradients (when asked for) and the loss slot after them."""
        size = self.segment_size if gradients else 0
        self.own = np.zeros(size + 1, self.dtype)
        self.loss_slot = self.own[size:]
        if gradients:
            self._bases["grads"] = (self.own, 0)
        for piece in (piece for pieces in self.layers for piece in pieces):
            piece.grad_weights, piece.grad_bias = (self._pair("grads", piece.offset, piece)
                                                   if gradients else (None, None))

    def add_gradients(self):
        """Give the parameters gradient buffers (and a new loss slot) if they have none."""
        if not self.has_gradients:
            self._own_block(True)

    def _pair(self, segment, offset, piece):
        block, base = self._bases[segment]
        base += offset
        w = block[base:base + piece.n_in * piece.n_out].reshape(piece.n_in, piece.n_out)
        return w, block[base + w.size:base + piece.size]

    @property
    def has_gradients(self):
        return "grads" in self._bases

    def segment(self, name):
        """The flat values of one segment ("weights", "grads" or a state name)."""
        block, start = self._bases[name]
        return block[start:start + self.segment_size]

    def gradients_and_loss(self):
        """The "grads" segment with the loss slot after it, as one view (one reduction sums both)."""
        if not self.has_gradients:
            raise RuntimeError("these parameters hold no gradients")
        return self.own

    def nbytes(self, segment="weights"):
        """Bytes of one segment on this rank."""
        return self.segment_size * self.dtype.itemsize if segment in self._bases else 0

    # ---------------------------------------------------------- initialisation

    def draw(self, seed):
        """Glorot-uniform weights, zero biases; each neuron's weights from its own stream.

        Neuron j of weight layer l (layer l + 1 of the network, input = 0) draws its
        in-degree d weights from U(-r, r), r = sqrt(6 / (d + n)), n the piece's
        init_fan_out, using SeedSequence(seed, spawn_key=(1, l + 1, j)): the network
        depends on the seed only, never on the rank count.
        """
        for l, pieces in enumerate(self.layers):
            for piece in pieces:
                bound = math.sqrt(6.0 / (piece.n_in + piece.init_fan_out))
                for j in range(piece.start, piece.stop):
                    stream = np.random.SeedSequence(seed, spawn_key=(INIT_STREAM, l + 1, j))
                    piece.weights[:, j - piece.start] = np.random.default_rng(stream).uniform(
                        -bound, bound, piece.n_in)

    # ----------------------------------------------- rows of W.T (checkpoints)

    def own_neurons(self, layer):
        """[start, stop) of the neurons of weight layer `layer` this rank holds ((0, 0): none)."""
        pieces = self.layers[layer]
        return (pieces[0].start, pieces[-1].stop) if pieces else (0, 0)

    def read_rows(self, layer, start, stop, segment="weights"):
        """(rows [stop - start, fan_in] of W.T, zeros off the edges; b[start:stop]) of one segment.

        The neurons must be this rank's (see own_neurons).
        """
        rows = np.zeros((stop - start, self.fan_ins[layer]), dtype=self.dtype)
        bias = np.zeros(stop - start, dtype=self.dtype)
        for piece, lo, hi, w, b in self._overlaps(layer, start, stop, segment):
            rows[lo - start:hi - start][:, piece.columns(rows.shape[1])] = w.T
            bias[lo - start:hi - start] = b
        return rows, bias

    def write_rows(self, layer, start, rows, bias, segment="weights"):
        """Inverse of read_rows: this rank's entries of W.T rows from neuron `start` on."""
        for piece, lo, hi, w, b in self._overlaps(layer, start, start + len(rows), segment):
            w[...] = rows[lo - start:hi - start][:, piece.columns(rows.shape[1])].T
            b[...] = bias[lo - start:hi - start]

    def _overlaps(self, layer, start, stop, segment):
        """(piece, lo, hi, W[:, lo:hi], b[lo:hi]) of a segment for the pieces meeting [start, stop)."""
        for piece in self.layers[layer]:
            lo, hi = max(start, piece.start), min(stop, piece.stop)
            if lo < hi:
                w, b = self._pair(segment, piece.offset, piece)
                yield piece, lo, hi, w[:, lo - piece.start:hi - piece.start], b[lo - piece.start:hi - piece.start]

    # --------------------------------------------------------- whole layers

    def full_layer(self, layer, n_out, segment="weights"):
        """This rank's share of the full (W[fan_in, n_out], b[n_out]): zeros elsewhere.

        Summed over the ranks (each neuron is held by one rank) it is the whole layer.
        """
        w = np.zeros((self.fan_ins[layer], n_out), dtype=self.dtype)
        b = np.zeros(n_out, dtype=self.dtype)
        for piece in self.layers[layer]:
            pw, pb = self._pair(segment, piece.offset, piece)
            w[piece.inputs, piece.start:piece.stop] = pw
            b[piece.start:piece.stop] = pb
        return w, b

    def set_full_layer(self, layer, w, b):
        """Take each piece's entries of the full (W, b); entries without an edge are ignored."""
        for piece in self.layers[layer]:
            np.copyto(piece.weights, np.asarray(w)[piece.inputs, piece.start:piece.stop])
            np.copyto(piece.bias, np.asarray(b)[piece.start:piece.stop])
