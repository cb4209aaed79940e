"""A network's machinery on this rank: its plan, parameters, buffers, the one step and its exchanges."""
import contextlib

import numpy as np

from ghostmlp._step import Step
from ghostmlp.errors import TrainingDiverged
from ghostmlp.layout import Buffers
from ghostmlp.params import Parameters
from ghostmlp.partition import slice_bounds, slice_sizes

BUCKET_BYTES = 25 * 2**20   # gradients summed over replicas together (as PyTorch DDP)
REPLICA_UPDATES = ("auto", "allreduce", "shared")     # see Network


def total_weight(n, weights):
    """The total weight of a batch of n samples: n, or sum_i w_i (in float64) for weights[n]."""
    return n if weights is None else float(np.sum(weights, dtype=np.float64))


class Engine:
    """The step of one rank of a (D, M) grid, over global batches that every rank is given.

    Replica d computes the contiguous share share(n) of each global batch of n samples
    (shares differ by at most one) and divides its output deltas by the global batch's
    total weight (n, or sum_i w_i with sample weights), so that its gradients are its part
    of the batch's mean; with D > 1 the gradients are summed over the replicas (in
    buckets, during backward) before the update: the step equals the serial step on the
    whole batch. Model parallelism within a replica is the layout's; exchange is None
    when serial. weights: the global batch's sample weights w[n], or None (all 1).
    replica_update (REPLICA_UPDATES, see Network): with "shared" (or "auto" where the
    replicas share a node and there is no master) the replicas' buffers and one copy of
    their parameters' values lie in shared memory (`memory`, an exchange.ReplicaMemory)
    and the step splits every update over them by weight rows (writes outside a step go
    through writing()); else the gradients are summed in buckets.
    """

    def __init__(self, layout, fan_ins, dtype, optimizer, loss, output_activation, exchange,
                 bucket_bytes, replica_update="auto"):
        self.layout, self.fan_ins, self.dtype = layout, fan_ins, np.dtype(dtype)
        self.bucket_bytes = bucket_bytes
        self.optimizer, self.exchange = optimizer, exchange
        self.codes = (loss, output_activation)
        self.replicas = exchange.n_replicas if exchange is not None else 1
        self.replica = exchange.replica if exchange is not None else 0
        self.memory = self._replica_memory(replica_update)
        self.parameters = self._new_parameters(
            (self.replicas > 1 and self.memory is None) or not optimizer.fuses_gradient)
        self.step = self.buffers = self.reducer = self.step_exchange = None
        self._share = 0             # samples of this replica in the last forward pass
        self._n = 0                 # the global batch of the last loss()

    def _replica_memory(self, replica_update):
        """The replicas' shared memory, or None when they sum gradients (collective)."""
        if self.replicas == 1 or replica_update == "allreduce":
            return None
        from ghostmlp.exchange import ReplicaMemory
        if not self.exchange.first_worker and self.exchange.replicas_share_memory():
            return ReplicaMemory(self.exchange)
        if replica_update == "shared":
            raise ValueError("replica_update='shared' needs the replicas of each model rank on "
                             "one node (MPI 3 shared memory) and no master")
        return None

    def _new_parameters(self, gradients):
        return Parameters(self.layout.new_pieces(), self.fan_ins, self.dtype,
                          self.optimizer.state_names, gradients,
                          self.memory.common if self.memory is not None else np.zeros)

    def require_gradients(self):
        """Give the parameters gradient buffers if they have none (weights and state kept)."""
        if not self.parameters.has_gradients:
            self.parameters.add_gradients()
            self.step = None        # bound to the old loss slot

    @contextlib.contextmanager
    def writing(self):
        """Context of a write to the parameters' values outside a step; yields whether this
        rank writes them. Replicas that share memory share one copy: replica 0 writes it,
        between two meetings of the replicas (no one reads it meanwhile). Collective."""
        if self.memory is None:
            yield True
            return
        self.exchange.replicas_meet()
        try:
            yield self.replica == 0
        finally:
            self.exchange.replicas_meet()

    def share(self, n):
        """[lo, hi) of a global batch of n samples that this rank's replica computes."""
        return slice_bounds(n, self.replicas, self.replica)

    def shares(self, n):
        """Every replica's number of samples of a global batch of n."""
        return slice_sizes(n, self.replicas)

    def capacity_for(self, n):
        """The shares a global batch of n binds for: this replica's, or with shared memory
        the largest (every replica binds at the same steps: binding allocates collectively)."""
        lo, hi = self.share(n) if self.memory is None else slice_bounds(n, self.replicas, 0)
        return hi - lo

    def bind_share(self, n):
        """Bind for this replica's share of a global batch of n; that share, as a slice."""
        self.bind(self.capacity_for(n))
        return slice(*self.share(n))

    def bind(self, batch):
        """(Re)bind the step to buffers for shares up to `batch` and to the current parameters."""
        if self.step is not None and batch <= self.buffers.capacity:
            return
        capacity = max(batch, 1, self.buffers.capacity if self.buffers is not None else 0)
        old, self.buffers = self.buffers, Buffers(self.layout, capacity, self.dtype,
                                                  self.memory.own if self.memory is not None
                                                  else np.empty)
        exchange, rows = None, None
        reduce = self.replicas > 1 and self.memory is None
        if self.exchange is not None:
            from ghostmlp.exchange import GradientReducer, ReplicaRows, StepExchange
            self.reducer = (GradientReducer(self.exchange, self.parameters, self.bucket_bytes)
                            if reduce else None)
            if self.step_exchange is not None:
                self.step_exchange.free()           # its requests point into the old buffers
            exchange = self.step_exchange = StepExchange(
                self.exchange, self.layout, self.buffers, self.reducer, self.parameters.loss_slot)
            if self.memory is not None:
                rows = ReplicaRows(self.memory, self.buffers.block)
        self.step = Step(self.layout, self.parameters.layers, self.buffers,
                         self.optimizer.kernel_args(), exchange, *self.codes,
                         self.layout.is_worker, reduce, self.parameters.loss_slot, rows)
        if self.memory is not None and old is not None:
            self.memory.free(old.block)

    # ------------------------------------------------------------------- steps

    def share_weights(self, n, weights):
        """(this replica's share of a global batch's weights, their total): (None, n) unweighted."""
        if weights is None:
            return None, n
        lo, hi = self.share(n)
        return weights[lo:hi], total_weight(n, weights)

    def train(self, xb, tb, n, lr, weights=None):
        """One step on this replica's rows xb, tb of a global batch of n; its (weighted) mean loss."""
        t = self.parameters.step_count + 1
        if self.exchange is None:           # serial: no share to take, nothing to time or sum
            loss = self.step.train(xb, tb, lr, t, weights, total_weight(n, weights))
            self.parameters.step_count = t
            return loss
        wb, total = self.share_weights(n, weights)
        with self.timed(step=True):
            if self.replicas == 1:
                loss = self.step.train(xb, tb, lr, t, wb, total)
            elif self.memory is not None:
                self.step.replica_batches(self.shares(n))
                if len(xb):
                    self.step.train(xb, tb, lr, t, wb, total)
                else:
                    self.step.backward_without_samples(lr, t)
                loss = self._summed_loss()
            elif len(xb):
                self.step.train(xb, tb, lr, t, wb, total)
                loss = self._summed_loss()
            else:
                loss = self._empty_step(lr, t)
        self.parameters.step_count = t
        return loss

    def forward(self, xb):
        """Forward pass of this replica's rows (none: nothing to compute)."""
        self._share = len(xb)
        if len(xb):
            with self.timed():
                self.step.forward(xb)

    def loss(self, tb, n, weights=None):
        """(Weighted) mean loss over the global batch of n of the last forward(); prepares backward()."""
        wb, total = self.share_weights(n, weights)
        self._n = n
        with self.timed():
            if self._share == 0:
                self.parameters.loss_slot[0] = 0
            else:
                local = self.step.loss_delta(tb, wb, total)
                if self.replicas == 1:
                    return local
            summed = self.parameters.loss_slot.astype(np.float64)
            self.exchange.allreduce_sum(summed, across="replicas")
        return float(summed[0])

    def backward(self, lr):
        """Back-propagate the last loss() and update (the replicas' gradients summed)."""
        t = self.parameters.step_count + 1
        with self.timed(step=True):
            if self.memory is not None:
                self.step.replica_batches(self.shares(self._n))
            if self._share:
                self.step.backward(lr, t)
                if self.replicas > 1:
                    self._summed_loss()         # raises when the update was held back
            else:
                self._empty_step(lr, t)
        self.parameters.step_count = t

    def _empty_step(self, lr, t):
        """A replica's step with no samples: its rows' update from the others' samples
        (shared memory), or zero gradients into the sum, then the update."""
        if self.memory is not None:
            self.step.backward_without_samples(lr, t)
            return self._summed_loss()
        self.parameters.segment("grads")[:] = 0
        self.parameters.loss_slot[0] = 0
        self.reducer.post_all()
        self.reducer.finish(lambda first, last: self.step.apply(lr, t, first, last))
        return self._summed_loss()

    def _summed_loss(self):
        loss = float(self.parameters.loss_slot[0])
        if not np.isfinite(loss):
            raise TrainingDiverged(f"the batch's loss is {loss} (non-finite inputs, or "
                                   "training diverged): no update was applied",
                                   step=self.parameters.step_count + 1)
        return loss

    def weights_finite(self):
        """Whether every weight and bias of the replica is finite (collective; one pass)."""
        bad = np.array([0.0 if np.isfinite(self.parameters.segment("weights")).all() else 1.0])
        if self.exchange is not None:
            self.exchange.allreduce_sum(bad)
        return bad[0] == 0

    def gradients(self, xb, tb, n, weights=None):
        """Write the gradients of the (weighted) mean loss over the global batch; that loss.

        Nothing else changes. With replicas, one all-reduce sums the gradients and the loss.
        """
        self.require_gradients()
        self.bind(self.capacity_for(n))
        wb, total = self.share_weights(n, weights)
        summed = self.parameters.gradients_and_loss()
        loss = 0.0
        with self.inference():
            if len(xb):
                self.step.forward(xb)
                loss = self.step.loss_delta(tb, wb, total)
                self.step.gradients()
            else:
                summed[:] = 0
        if self.replicas > 1:
            self.exchange.allreduce_sum(summed, across="replicas")
            loss = float(summed[-1])
        return loss

    def outputs(self, batch):
        """The output layer's activations of the last forward pass, as a view [n_out, B]."""
        return Buffers.view(self.buffers.acts[-1], self.layout.sizes[-1], batch)

    # ----------------------------------------------------------------- layers

    def full_layer(self, l, segment="weights", root=None):
        """The whole (W, b) of weight layer l, on every rank or only on rank `root` (else None)."""
        w, b = self.parameters.full_layer(l, self.layout.sizes[l + 1], segment)
        if self.exchange is None:
            return w, b
        for array in (w, b):
            if root is None:
                self.exchange.allreduce_sum(array)
            else:
                self.exchange.reduce_sum(array, root)
        return (w, b) if root is None or self.exchange.rank == root else (None, None)

    # ------------------------------------------------------------------ stats

    def timed(self, step=False):
        """Context counted in stats() as training time (as one iteration when step=True)."""
        return self.exchange.timed(step) if self.exchange is not None else contextlib.nullcontext()

    def inference(self):
        """Context in which forward passes are not training: stats() leaves them out."""
        return self.exchange.uncounted() if self.exchange is not None else contextlib.nullcontext()
