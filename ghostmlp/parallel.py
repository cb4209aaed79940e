"""Model-parallel layout and step: each rank holds a slice of every layer (dense or ghost blocks)."""
import contextlib
import math
import time

import numpy as np
from scipy.linalg.blas import get_blas_funcs

from ghostmlp import _kernels as K
from ghostmlp.exchange import Exchange
from ghostmlp.partition import blocks_of_rank, ghost_inputs, rank_bounds, slice_bounds


class Piece:
    """One block of a layer on this rank: W[n_in, n_out] over the given input neurons.

    inputs: global indices of the previous layer's neurons, in weight-row order;
    in_offset: their first row in the layer's input buffer; start, stop: the global
    output neurons; out_offset: their first row among this rank's own rows.
    """

    def __init__(self, inputs, in_offset, start, stop, out_offset, dtype, momentum):
        self.inputs = np.asarray(inputs)
        self.all_inputs = bool(np.array_equal(self.inputs, np.arange(len(self.inputs))))
        self.in_offset, self.start, self.stop, self.out_offset = in_offset, start, stop, out_offset
        self.weights = np.zeros((len(inputs), stop - start), dtype=dtype)
        self.bias = np.zeros(stop - start, dtype=dtype)
        self.velocity = ((np.zeros_like(self.weights), np.zeros_like(self.bias))
                         if momentum else None)

    def rows(self, buffer):
        return buffer[self.in_offset:self.in_offset + len(self.inputs)]

    def own(self, rows):
        return rows[self.out_offset:self.out_offset + self.stop - self.start]

    def columns(self, n_in):
        """Index of the inputs among n_in neurons: a slice when they are all of them, in order."""
        return slice(None) if self.all_inputs and len(self.inputs) == n_in else self.inputs


class Layer:
    """Layer l's plan on this rank: own neurons [start, stop), pieces, and how it communicates.

    halo: a ghost hidden layer, stored with its two ghost rows; otherwise the layer is
    gathered whole (dense hidden layers and the output). counts: own rows per working rank.
    """

    def __init__(self, size, start, stop, halo, counts, activation):
        self.size, self.start, self.stop, self.halo = size, start, stop, halo
        self.counts, self.activation, self.pieces = counts, activation, []

    @property
    def n_own(self):
        return self.stop - self.start


class ModelParallel:
    """A network's weights and buffers spread over the ranks of `comm`, and its step.

    Drop-in for LayerStack (forward, loss_delta, backward, step, gradients, batch) plus
    get_weights/set_weights of the full matrices. connectivity "dense" computes exactly
    the serial network; "ghost" the paper's blocked ring topology with `blocks` blocks.
    """

    def __init__(self, comm, sizes, activations, loss, dtype, seed, momentum,
                 connectivity, blocks, ghost_gradients, master, draw=True):
        self.exchange = ex = Exchange(comm, master)
        self.sizes, self.loss, self.dtype = sizes, loss, np.dtype(dtype)
        self.output_activation = activations[-1]
        self.exact = ghost_gradients == "exact"
        self.ghost = connectivity == "ghost" and blocks > 1
        self.layers = []
        parts = blocks if self.ghost else ex.n_workers
        for l, size in enumerate(sizes[1:], 1):
            is_output = l == len(sizes) - 1
            bounds = [rank_bounds(size, parts, ex.n_workers, r) for r in range(ex.n_workers)]
            start, stop = bounds[max(ex.worker_rank, 0)]
            self.layers.append(Layer(size, start, stop, self.ghost and not is_output,
                                     [b - a for a, b in bounds],
                                     K.IDENTITY if is_output else activations[l - 1]))
        if ex.is_worker:
            self._build_pieces(blocks, momentum)
            if draw:                    # else the weights stay zero until a checkpoint fills them
                self._initialize(seed)
        self.capacity = 0
        self.batch = 0
        self.iterations = 0
        self.step_seconds = 0.0

    # ------------------------------------------------------------------ layout

    def _build_pieces(self, blocks, momentum):
        ex = self.exchange
        for l, layer in enumerate(self.layers, 1):
            previous = self.layers[l - 2] if l > 1 else None
            if not self.ghost or l == 1:
                inputs = range(self.sizes[l - 1])
                layer.pieces.append(Piece(inputs, 0, layer.start, layer.stop, 0, self.dtype, momentum))
                continue
            for block in blocks_of_rank(blocks, ex.n_workers, ex.worker_rank):
                start, stop = slice_bounds(layer.size, blocks, block)
                inputs = ghost_inputs(previous.size, blocks, block)
                # inputs[1] is the block's first own neuron, at halo row 1 + its offset.
                in_offset = inputs[1] - previous.start
                layer.pieces.append(Piece(inputs, in_offset, start, stop, start - layer.start,
                                          self.dtype, momentum))

    def _initialize(self, seed):
        """Neuron j of layer l: its in-degree d weights from SeedSequence(seed, (1, l, j)).

        U(-r, r), r = sqrt(6 / (d + n)), n the fan-out of its block (the layer when dense).
        """
        for l, layer in enumerate(self.layers, 1):
            for piece in layer.pieces:
                fan_in, fan_out = piece.weights.shape
                if l == 1 or not self.ghost:
                    fan_out = layer.size
                bound = math.sqrt(6.0 / (fan_in + fan_out))
                for j in range(piece.start, piece.stop):
                    stream = np.random.SeedSequence(seed, spawn_key=(1, l, j))
                    piece.weights[:, j - piece.start] = np.random.default_rng(stream).uniform(
                        -bound, bound, fan_in)

    def _assemble(self, parts, layer, l, dtype):
        full = np.zeros((self.sizes[l - 1], layer.size), dtype=dtype)
        for piece, values in parts:
            full[piece.inputs, piece.start:piece.stop] = values
        self.exchange.allreduce_sum(full)
        return full

    def get_weights(self):
        """Full [(W[fan_in, fan_out], b[fan_out])] on every rank, zeros where no edge."""
        result = []
        for l, layer in enumerate(self.layers, 1):
            w = self._assemble([(p, p.weights) for p in layer.pieces], layer, l, self.dtype)
            b = np.zeros(layer.size, dtype=self.dtype)
            for piece in layer.pieces:
                b[piece.start:piece.stop] = piece.bias
            self.exchange.allreduce_sum(b)
            result.append((w, b))
        return result

    def set_weights(self, weights):
        """Take each piece's entries from full [(W, b)]; entries without an edge are ignored."""
        for layer, (w, b) in zip(self.layers, weights):
            for piece in layer.pieces:
                np.copyto(piece.weights, np.asarray(w)[piece.inputs, piece.start:piece.stop])
                np.copyto(piece.bias, np.asarray(b)[piece.start:piece.stop])

    def nbytes(self):
        """Bytes of the weights and biases of this rank's pieces."""
        return sum(p.weights.nbytes + p.bias.nbytes for layer in self.layers for p in layer.pieces)

    def own_rows(self, l, start, stop, velocity=False):
        """Rows [start, stop) of layer l's W.T (full fan_in wide, zeros off the edges) and b.

        The neurons must be this rank's; velocity=True reads the momentum buffers instead.
        """
        layer = self.layers[l - 1]
        rows = np.zeros((stop - start, self.sizes[l - 1]), dtype=self.dtype)
        bias = np.zeros(stop - start, dtype=self.dtype)
        for piece, lo, hi in self._overlaps(layer, start, stop):
            weights, b = piece.velocity if velocity else (piece.weights, piece.bias)
            columns = piece.columns(rows.shape[1])
            rows[lo - start:hi - start][:, columns] = weights[:, lo - piece.start:hi - piece.start].T
            bias[lo - start:hi - start] = b[lo - piece.start:hi - piece.start]
        return rows, bias

    def set_own_rows(self, l, start, rows, bias, velocity=False):
        """Inverse of own_rows: take this rank's entries of W.T rows starting at neuron `start`."""
        layer = self.layers[l - 1]
        for piece, lo, hi in self._overlaps(layer, start, start + len(rows)):
            weights, b = piece.velocity if velocity else (piece.weights, piece.bias)
            columns = piece.columns(rows.shape[1])
            weights[:, lo - piece.start:hi - piece.start] = rows[lo - start:hi - start][:, columns].T
            b[lo - piece.start:hi - piece.start] = bias[lo - start:hi - start]

    @staticmethod
    def _overlaps(layer, start, stop):
        for piece in layer.pieces:
            lo, hi = max(start, piece.start), min(stop, piece.stop)
            if lo < hi:
                yield piece, lo, hi

    # ----------------------------------------------------------------- buffers

    def ensure_capacity(self, batch):
        if batch <= self.capacity:
            return
        d = self.dtype
        self.inputs_t = np.empty(self.sizes[0] * batch, d)
        self.acts = [np.empty(((layer.n_own + 2) if layer.halo else layer.size) * batch, d)
                     for layer in self.layers]
        self.deltas = [np.empty(((layer.n_own + 2) if layer.halo else layer.size) * batch, d)
                       for layer in self.layers]
        self.own_deltas = [np.empty(layer.n_own * batch, d) for layer in self.layers]
        self.inbox = np.empty(2 * batch, d)
        self.scratch = np.empty(2 * batch, d)
        self.capacity = batch

    @staticmethod
    def _view(flat, rows, batch):
        return flat[:rows * batch].reshape(rows, batch)

    def _act(self, l, batch):
        """Layer l's activation buffer [rows, B] (l = 0: the transposed input)."""
        if l == 0:
            return self._view(self.inputs_t, self.sizes[0], batch)
        layer = self.layers[l - 1]
        return self._view(self.acts[l - 1], layer.n_own + 2 if layer.halo else layer.size, batch)

    def _own(self, buffer, layer):
        """This rank's own rows of a layer's activation or delta buffer."""
        return buffer[1:-1] if layer.halo else buffer[layer.start:layer.stop]

    def _delta_own(self, l, batch):
        layer = self.layers[l - 1]
        if layer.halo:
            return self._view(self.deltas[l - 1], layer.n_own + 2, batch)[1:-1]
        if l == len(self.layers):
            return self._view(self.deltas[l - 1], layer.size, batch)[layer.start:layer.stop]
        return self._view(self.own_deltas[l - 1], layer.n_own, batch)

    def outputs(self, batch):
        return self._act(len(self.layers), batch)

    # -------------------------------------------------------------------- step

    def forward(self, x):
        started = time.perf_counter()
        batch = len(x)
        self.batch = batch
        ex = self.exchange
        np.copyto(self._act(0, batch), x.T)
        last = len(self.layers)
        for l, layer in enumerate(self.layers, 1):
            out = self._act(l, batch)
            if ex.is_worker:
                h = self._act(l - 1, batch)
                own = self._own(out, layer)
                if layer.halo:
                    self._forward_halo(layer, h, own, out)
                else:
                    for piece in layer.pieces:
                        K.forward_slice(piece.rows(h), piece.weights, piece.bias,
                                        piece.own(own), layer.activation, scratch=self.scratch)
            if not layer.halo and (l == last or ex.n_workers > 1):
                if l == last or ex.is_worker:
                    ex.allgather_rows(out, layer.counts, everyone=l == last)
        K.bias_activation(self.outputs(batch), None, self.output_activation, self.scratch)
        self.step_seconds += time.perf_counter() - started

    def _forward_halo(self, layer, h, own, out):
        """Boundary neurons first, then post the halo, then the interior while it travels."""
        first, last = layer.pieces[0], layer.pieces[-1]
        args = dict(scratch=self.scratch)
        K.forward_slice(first.rows(h), first.weights, first.bias, first.own(own), layer.activation,
                        0, 1, **args)
        n_last = last.stop - last.start
        if last is not first or n_last > 1:
            K.forward_slice(last.rows(h), last.weights, last.bias, last.own(own), layer.activation,
                            n_last - 1, n_last, **args)
        requests = self.exchange.post_halo(out)
        for piece in layer.pieces:
            n = piece.stop - piece.start
            begin = 1 if piece is first else 0
            end = n - 1 if piece is last else n
            if begin < end:
                K.forward_slice(piece.rows(h), piece.weights, piece.bias, piece.own(own),
                                layer.activation, begin, end, **args)
        self.exchange.wait(requests)

    def loss_delta(self, target):
        started = time.perf_counter()
        last = len(self.layers)
        delta = self._view(self.deltas[last - 1], self.sizes[-1], self.batch)
        loss = K.loss_delta(self.outputs(self.batch), target, delta, self.output_activation,
                            self.loss, self.scratch)
        self.step_seconds += time.perf_counter() - started
        return loss

    def backward(self, learning_rate, momentum=0.0, weight_decay=0.0):
        self._backward(learning_rate, momentum, weight_decay, None)
        self.iterations += 1

    def step(self, x, target, learning_rate, momentum=0.0, weight_decay=0.0):
        self.forward(x)
        loss = self.loss_delta(target)
        self.backward(learning_rate, momentum, weight_decay)
        return loss

    def gradients(self, grad_weights, grad_biases):
        """Fill full gradient arrays (zeros where no edge) on every rank; nothing changes."""
        parts = [[] for _ in self.layers]
        self._backward(0.0, 0.0, 0.0, parts)
        for l, (layer, pieces) in enumerate(zip(self.layers, parts), 1):
            np.copyto(grad_weights[l - 1], self._assemble(
                [(p, gw) for p, gw, _ in pieces], layer, l, self.dtype))
            gb = np.zeros(layer.size, dtype=self.dtype)
            for piece, _, g in pieces:
                gb[piece.start:piece.stop] = g
            self.exchange.allreduce_sum(gb)
            np.copyto(grad_biases[l - 1], gb)

    def _backward(self, lr, momentum, weight_decay, grads):
        started = time.perf_counter()
        ex, batch = self.exchange, self.batch
        for l in range(len(self.layers), 0, -1) if ex.is_worker else ():
            layer = self.layers[l - 1]
            delta, h = self._delta_own(l, batch), self._act(l - 1, batch)
            if l > 1:
                self._backprop(l, delta, batch)
            for piece in layer.pieces:
                self._update(piece, piece.rows(h), piece.own(delta), lr, momentum, weight_decay,
                             grads[l - 1] if grads is not None else None)
        self.step_seconds += time.perf_counter() - started

    def _backprop(self, l, delta, batch):
        """The previous layer's own deltas from this layer's (read before its weights change)."""
        layer, previous = self.layers[l - 1], self.layers[l - 2]
        a_own = self._own(self._act(l - 1, batch), previous)
        if previous.halo:
            rows = self._view(self.deltas[l - 2], previous.n_own + 2, batch)
            rows[:] = 0
            for piece in layer.pieces:
                if self.exact:
                    K.backprop(piece.own(delta), piece.weights, piece.rows(rows), accumulate=True)
                else:   # ghosts are constants: only the block's own neurons get its deltas
                    K.backprop(piece.own(delta), piece.weights[1:-1], piece.rows(rows)[1:-1],
                               accumulate=True)
            if self.exact:
                self.exchange.reverse_halo(rows, self._view(self.inbox, 2, batch))
            K.apply_derivative(rows[1:-1], a_own, previous.activation)
            return
        own = self._delta_own(l - 1, batch)
        piece = layer.pieces[0]
        if self.exchange.n_workers == 1:
            K.backprop(delta, piece.weights, own)
        else:
            partial = self._view(self.deltas[l - 2], previous.size, batch)
            K.backprop(delta, piece.weights, partial)
            self.exchange.reduce_scatter_rows(partial, own, previous.counts)
        K.apply_derivative(own, a_own, previous.activation)

    @staticmethod
    def _update(piece, h, delta, lr, momentum, weight_decay, grads):
        """The serial update rules on one piece (see Network), or its gradient into grads."""
        if grads is not None:
            gw, gb = np.empty_like(piece.weights), np.empty_like(piece.bias)
            K.outer_update(h, delta, gw, gb, 1.0, 0.0)
            grads.append((piece, gw, gb))
        elif momentum == 0:
            K.outer_update(h, delta, piece.weights, piece.bias, -lr, 1 - lr * weight_decay, 1.0)
        else:
            v, vb = piece.velocity
            K.outer_update(h, delta, v, vb, -lr, momentum)
            if weight_decay:        # v -= lr wd W in place: BLAS axpy, no temporary array
                get_blas_funcs("axpy", (v,))(piece.weights.ravel(), v.ravel(), a=-lr * weight_decay)
            piece.weights += v
            piece.bias += vb

    # ------------------------------------------------------------------- stats

    def stats(self):
        """Per-iteration compute and communication seconds (max, mean over ranks), counts."""
        ex = self.exchange
        n = max(self.iterations, 1)
        comm = ex.seconds / n
        step = self.step_seconds / n
        (step_max, comm_max, compute_max, msg_max, bytes_max), (
            _, comm_mean, compute_mean, msg_mean, bytes_mean) = (
            map(float, values) for values in ex.summarise(
                [step, comm, step - comm, ex.messages / n, ex.bytes / n]))
        return {
            "iterations": self.iterations,
            "step_seconds": step_max,
            "compute_seconds_max": compute_max, "compute_seconds_mean": compute_mean,
            "comm_seconds_max": comm_max, "comm_seconds_mean": comm_mean,
            "comm_percent": 100.0 * comm_max / step_max if step_max else 0.0,
            "messages_per_rank": msg_mean, "messages_max": msg_max,
            "bytes_per_rank": bytes_mean, "bytes_max": bytes_max,
            "collectives": {k: v / n for k, v in ex.collectives.items()},
        }

    @contextlib.contextmanager
    def uncounted(self):
        """Leave the communication and time of what runs inside (inference) out of stats()."""
        ex = self.exchange
        saved = ex.messages, ex.bytes, dict(ex.collectives), ex.seconds, self.step_seconds
        try:
            yield
        finally:
            ex.messages, ex.bytes, ex.collectives, ex.seconds, self.step_seconds = saved

    def reset_stats(self):
        self.exchange.reset_counters()
        self.iterations, self.step_seconds = 0, 0.0
