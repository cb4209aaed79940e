"""The one training step: forward, loss, backward and update over this rank's pieces of every layer.

A plan (``ghostmlp.layout``) says per layer which pieces of it this rank computes, where
their inputs and outputs lie in the neuron-major buffers (``H[rows, B]``, see
``_kernels.pyx``) and which exchange follows. The step runs the arithmetic without the
GIL, and the plan's exchanges too: their persistent requests, made by the exchange
(``StepExchange.compiled``), are started and waited here (``_mpi.pxd``); only where the
exchange has none for compiled code does the step call it in Python (mpi4py). The serial
plan names no exchange, so a serial step is one call with no Python in between.
"""
from libc.math cimport isfinite, pow
from libc.stdlib cimport calloc, free
from libc.string cimport memset
from cython cimport floating

cimport numpy as cnp
import numpy

from ghostmlp import blas
from ghostmlp._blas cimport bind
from ghostmlp._mpi cimport Requests, bind_requests, start_requests, wait_requests

from ghostmlp._layer cimport (
    IDENTITY, SOFTMAX, FUSED_ROW_MIN_BYTES, backprop_core, bias_activation_core,
    bias_sum_core, derivative_core, forward_core, fused_delta_update_core, outer_core,
    output_delta_core, weights_outer_core)
from ghostmlp._optim cimport SGD, ADAMW, adam_core, momentum_apply_core, sgd_core

cnp.import_array()


def _bind_blas(addresses, ilp64):
    """Points this module's BLAS table at one library (called by ghostmlp.blas)."""
    bind(addresses, ilp64)


blas.register(_bind_blas)

FORWARD_EXCHANGES = {"none": NO_EXCHANGE, "halo": HALO, "gather": GATHER, "wrap": WRAP}
BACKWARD_EXCHANGES = {"local": LOCAL, "reduce_scatter": REDUCE_SCATTER,
                      "halo_exact": HALO_EXACT, "halo_local": HALO_LOCAL,
                      "wrap_exact": WRAP_EXACT}


cdef void* _data(object array, int typenum, Py_ssize_t size, str name) except NULL:
    """Pointer to a C-contiguous array of the given type and number of values."""
    if (not isinstance(array, cnp.ndarray) or cnp.PyArray_TYPE(array) != typenum
            or not cnp.PyArray_IS_C_CONTIGUOUS(array) or cnp.PyArray_SIZE(array) < size):
        raise ValueError(f"{name} must be a C-contiguous {cnp.PyArray_DescrFromType(typenum)} "
                         f"array of at least {size} values")
    return cnp.PyArray_DATA(array)


cdef class Step:
    """A rank's step over the buffers of a plan: forward, loss_delta, backward, apply.

    plan: a ghostmlp.layout plan (layers with rows, own_row, n_own, activation,
    post_softmax, forward, backward); pieces[l]: this rank's pieces of layer l (n_in,
    n_out, in_row, out_row, weights, bias, grad_weights, grad_bias, state);
    buffers: acts, deltas, own_deltas (None where unused), inputs_t, scratch, inbox, capacity;
    optimizer: (code, momentum, nesterov, weight_decay, beta1, beta2, eps);
    exchange: the plan's exchange (compiled(B): per layer the requests of its forward and
    backward exchanges for compiled code, or None; where None, post_halo, wait_halo,
    gather, reverse_halo, reduce_scatter, each given the layer and B; the returned ghost
    deltas arrive in buffers.inbox, which the step adds; failed(code) raises MPI's error),
    or None when the plan has none;
    reduce_gradients: backward() writes the gradients, hands each layer's to the
    exchange (gradients_done(l)) as soon as it is written, and updates every bucket of
    layers once the exchange's reducer has summed it over the replicas; loss_slot: a
    one-value array where loss_delta() leaves its share of the loss, summed with them;
    replica_rows: replicas that share memory and one copy of the parameters' values
    (exchange.ReplicaRows: count, index, buffer_shifts in bytes to each replica's buffers,
    laid out as this rank's): backward() then writes every layer's deltas, sums the losses
    over the replicas (exchange.loss_sum: after it no one reads this step's weights),
    updates this replica's rows of every piece from every replica's samples
    (replica_batches() gives their shares) and waits for the others
    (exchange.replica_sync) before the next step.
    """

    def __cinit__(self, plan, pieces, buffers, optimizer, exchange, int loss, int output_act,
                  bint is_worker, bint reduce_gradients=False, loss_slot=None,
                  replica_rows=None):
        cdef Py_ssize_t l, k, n = len(plan.layers)
        cdef Layer* L
        cdef Piece* p
        self.layers = <Layer*>calloc(n, sizeof(Layer))
        if self.layers == NULL:
            raise MemoryError()
        self.n_layers = n
        self.typenum = cnp.NPY_FLOAT64 if buffers.inputs_t.dtype == numpy.float64 else cnp.NPY_FLOAT32
        self.capacity = buffers.capacity
        self.n_inputs = plan.sizes[0]
        self.n_outputs = plan.sizes[len(plan.sizes) - 1]
        self.loss, self.output_act, self.is_worker = loss, output_act, is_worker
        self.reduce_gradients = reduce_gradients
        self.loss_slot = NULL
        (self.optimizer, self.momentum, self.nesterov, self.weight_decay, self.beta1,
         self.beta2, self.eps) = optimizer
        self.fused_rows = self.optimizer == SGD and self.momentum == 0 and self.weight_decay == 0
        self.has_gradients = True           # until a piece without gradient buffers is seen
        # SGD's momentum buffer; Adam's two moments.
        cdef int n_states = (1 if self.momentum else 0) if self.optimizer == SGD else 2
        self.n_states = n_states
        self.exchange, self.batch, self.exchange_batch = exchange, 0, 0
        self.keep = (pieces, buffers)
        cdef int t = self.typenum, cap = self.capacity
        if loss_slot is not None:
            self.loss_slot = _data(loss_slot, t, 1, "loss_slot")
        self.xt = _data(buffers.inputs_t, t, self.n_inputs * cap, "inputs_t")
        self.scratch = _data(buffers.scratch, t, 2 * cap, "scratch")
        self.inbox = _data(buffers.inbox, t, 2 * cap, "inbox")
        for l, layer in enumerate(plan.layers):
            L = &self.layers[l]
            L.rows, L.own_row, L.n_own = layer.rows, layer.own_row, layer.n_own
            L.act, L.post_softmax = layer.activation, layer.post_softmax
            L.forward = FORWARD_EXCHANGES[layer.forward]
            L.backward = BACKWARD_EXCHANGES[layer.backward]
            L.acts = _data(buffers.acts[l], t, L.rows * cap, "acts")
            L.deltas = _data(buffers.deltas[l], t, L.rows * cap, "deltas")
            L.own_deltas = (NULL if buffers.own_deltas[l] is None else
                            _data(buffers.own_deltas[l], t, L.n_own * cap, "own_deltas"))
            L.n_pieces = len(pieces[l])
            L.pieces = <Piece*>calloc(max(L.n_pieces, 1), sizeof(Piece))
            if L.pieces == NULL:
                raise MemoryError()
            for k, piece in enumerate(pieces[l]):
                p = &L.pieces[k]
                p.n_in, p.n_out = piece.n_in, piece.n_out
                p.in_row, p.out_row = piece.in_row, piece.out_row
                p.w = _data(piece.weights, t, p.n_in * p.n_out, "weights")
                p.b = _data(piece.bias, t, p.n_out, "bias")
                if piece.grad_weights is not None:
                    p.gw = _data(piece.grad_weights, t, p.n_in * p.n_out, "grad_weights")
                    p.gb = _data(piece.grad_bias, t, p.n_out, "grad_bias")
                else:
                    self.has_gradients = False
                if len(piece.state) < n_states:
                    raise ValueError(f"the optimizer needs {n_states} state buffers per piece, "
                                     f"got {len(piece.state)}")
                for i, (sw, sb) in enumerate(piece.state[:n_states]):
                    p.state[2 * i] = _data(sw, t, p.n_in * p.n_out, "state")
                    p.state[2 * i + 1] = _data(sb, t, p.n_out, "state")

        if not self.has_gradients and (reduce_gradients or not (self.optimizer == SGD
                                                               and not self.nesterov)):
            raise ValueError("this optimizer's update needs gradient buffers")
        if replica_rows is not None:
            self._share_rows(replica_rows)

    def _share_rows(self, rows):
        cdef int e, n = rows.count
        self.split_rows, self.n_replicas, self.replica = True, n, rows.index
        self.buffer_shift = <Py_ssize_t*>calloc(n, sizeof(Py_ssize_t))
        self.replica_batch = <int*>calloc(n, sizeof(int))
        if self.buffer_shift == NULL or self.replica_batch == NULL:
            raise MemoryError()
        for e in range(n):
            self.buffer_shift[e] = rows.buffer_shifts[e]
        barrier, loss = self.exchange.replica_requests()
        self.keep = (*self.keep, barrier, loss)       # their arrays outlive the Requests
        bind_requests(&self.replica_sync, barrier)
        bind_requests(&self.loss_sum, loss)

    def __dealloc__(self):
        cdef int l
        if self.layers != NULL:
            for l in range(self.n_layers):
                free(self.layers[l].pieces)
            free(self.layers)
        free(self.buffer_shift)
        free(self.replica_batch)

    @property
    def batch(self):
        """B of the last forward pass (0 before the first)."""
        return self.batch

    def forward(self, x):
        """Forward pass of X[B, n_0] (C-contiguous, 1 <= B <= capacity) into the plan's buffers."""
        cdef Py_ssize_t batch = x.shape[0] if isinstance(x, numpy.ndarray) and x.ndim == 2 else 0
        if not 1 <= batch <= self.capacity or x.shape[1] != self.n_inputs:
            raise ValueError(f"x must be [B, {self.n_inputs}] with 1 <= B <= {self.capacity}")
        cdef void* xp = _data(x, self.typenum, batch * self.n_inputs, "x")
        if self.exchange is not None and batch != self.exchange_batch:
            self._bind_exchange(batch)
        self.batch = batch
        if self.typenum == cnp.NPY_FLOAT64:
            _forward(self, <double*>xp)
        else:
            _forward(self, <float*>xp)

    def loss_delta(self, target, weights=None, double total=0):
        """sum_i w_i loss_i / total over the last forward pass; writes the output deltas of it.

        target: class indices int64[B], or rows Y[B, n_out] of the network's dtype;
        weights: w[B] of that dtype (None: all 1); total 0: sum_i w_i (B unweighted), the
        batch's mean. A share of a global batch passes the global total: the result and
        the deltas are then its part of that batch's mean, and the result is left in the
        loss slot to be summed over the shares.
        """
        cdef long long* labels = NULL
        cdef void* rows = NULL
        cdef void* w = NULL
        if self.batch == 0:
            raise RuntimeError("loss_delta() needs a forward() first")
        if isinstance(target, numpy.ndarray) and target.ndim == 1 and target.shape[0] == self.batch:
            labels = <long long*>_data(target, cnp.NPY_INT64, self.batch, "labels")
        elif (isinstance(target, numpy.ndarray) and target.ndim == 2
              and target.shape[0] == self.batch and target.shape[1] == self.n_outputs):
            rows = _data(target, self.typenum, self.batch * self.n_outputs, "targets")
        else:
            raise ValueError(f"target must be labels int64[{self.batch}] or targets "
                             f"[{self.batch}, {self.n_outputs}] of the network's dtype")
        if weights is not None:
            if not (isinstance(weights, numpy.ndarray) and weights.ndim == 1
                    and weights.shape[0] == self.batch):
                raise ValueError(f"weights must be [{self.batch}] of the network's dtype")
            w = _data(weights, self.typenum, self.batch, "weights")
        if total == 0:
            total = self.batch if weights is None else float(numpy.sum(weights, dtype=numpy.float64))
        if not total > 0:
            raise ValueError(f"the total weight must be > 0, got {total}")
        if self.typenum == cnp.NPY_FLOAT64:
            loss = _loss(self, <double*>rows, labels, <double*>w, total)
            if self.loss_slot != NULL:
                (<double*>self.loss_slot)[0] = loss
        else:
            loss = _loss(self, <float*>rows, labels, <float*>w, total)
            if self.loss_slot != NULL:
                (<float*>self.loss_slot)[0] = <float>loss
        return loss

    def backward(self, double learning_rate, long step):
        """Back-propagate the output deltas and update every piece (optimizer step `step`, from 1)."""
        self._backward(UPDATE, learning_rate, step)

    def replica_batches(self, batches):
        """Each replica's share of the coming step's batch (replicas that share memory)."""
        cdef int e
        if not self.split_rows or len(batches) != self.n_replicas:
            raise ValueError(f"need the shares of {self.n_replicas} replicas sharing memory")
        for e in range(self.n_replicas):
            self.replica_batch[e] = batches[e]

    def backward_without_samples(self, double learning_rate, long step):
        """backward() of a replica with no samples in this batch: its rows' updates from
        the others' (replicas that share memory)."""
        if not self.split_rows:
            raise RuntimeError("only replicas that share memory update without samples")
        self.batch = 0
        if self.typenum == cnp.NPY_FLOAT64:
            (<double*>self.loss_slot)[0] = 0
            _backward(self, <double>learning_rate, UPDATE, step, False)
        else:
            (<float*>self.loss_slot)[0] = 0
            _backward(self, <float>learning_rate, UPDATE, step, False)

    def gradients(self):
        """Back-propagate and write d(mean loss)/dW, d/db into the pieces' gradient buffers."""
        self._backward(GRADIENTS, 0, 0)

    def apply(self, double learning_rate, long step, int first=0, last=None):
        """The optimizer's update of layers first..last (default all) from their gradient buffers."""
        cdef int top = self.n_layers - 1 if last is None else last
        if not self.has_gradients:
            raise RuntimeError("apply() needs gradient buffers")
        if not 0 <= first <= top < self.n_layers:
            raise ValueError(f"need 0 <= first <= last < {self.n_layers}")
        if self.is_worker:
            if self.typenum == cnp.NPY_FLOAT64:
                _apply_all(self, <double>learning_rate, step, first, top)
            else:
                _apply_all(self, <float>learning_rate, step, first, top)

    def train(self, x, target, double learning_rate, long step, weights=None, double total=0):
        """forward(x), loss_delta(target, weights, total), backward(learning_rate, step); its loss."""
        self.forward(x)
        loss = self.loss_delta(target, weights, total)
        self._backward(UPDATE, learning_rate, step)
        return loss

    cdef _bind_exchange(self, int batch):
        """Point every layer's requests at its exchanges' for batch B."""
        cdef int l
        self.compiled = self.exchange.compiled(batch)
        for l in range(self.n_layers):
            bind_requests(&self.layers[l].forward_requests, self.compiled[l][0])
            bind_requests(&self.layers[l].backward_requests, self.compiled[l][1])
        self.exchange_batch = batch

    cdef _backward(self, int mode, double lr, long step):
        if self.batch == 0:
            raise RuntimeError("backward() needs a forward() and loss_delta() first")
        if mode == GRADIENTS and not self.has_gradients:
            raise RuntimeError("gradients() needs gradient buffers")
        cdef bint reduce = mode == UPDATE and self.reduce_gradients
        if self.is_worker:
            if self.typenum == cnp.NPY_FLOAT64:
                _backward(self, <double>lr, GRADIENTS if reduce else mode, step, reduce)
            else:
                _backward(self, <float>lr, GRADIENTS if reduce else mode, step, reduce)
        if reduce:
            if not self.is_worker:      # a master's bucket holds the loss slot alone
                self.exchange.reducer.post_all()
            self.exchange.reducer.finish(lambda first, last: self.apply(lr, step, first, last))


# ---------------------------------------------------------------- the exchanges

cdef enum:
    START = 1           # what _exchange does with a layer's requests
    WAIT = 2


cdef int _exchange(Step s, Requests* r, str method, int l, int parts) except -1:
    """Layer l's exchange: start its requests (parts & START) and wait for them (parts &
    WAIT, the GIL released) here, else call the exchange's `method`, which does the same."""
    cdef int error = 0
    if r.count == 0:
        getattr(s.exchange, method)(l, s.batch)
        return 0
    with nogil:
        if parts & START:
            error = start_requests(r)
        if error == 0 and parts & WAIT:
            error = wait_requests(r, l)
    if error:
        s.exchange.failed(error)
    return 0


# ------------------------------------------------------------------- the passes

cdef inline floating* _own_deltas(Layer* L, int batch, floating* like) noexcept nogil:
    """The layer's own deltas [n_own, B] (`like` only picks the dtype)."""
    if L.own_deltas != NULL:
        return <floating*>L.own_deltas
    return <floating*>L.deltas + L.own_row * <Py_ssize_t>batch


cdef inline void _add_ghost_deltas(Layer* L, int batch, floating* to_first,
                                   floating* to_last) noexcept nogil:
    """The deltas of the layer's first and last own rows (rows 1 and n_own of its halo
    [n_own + 2, B]) += the deltas of the ghosts of them, to_first[B] and to_last[B]: what
    the neighbours sent back (inbox[0], inbox[1]) or, on a ring of one rank, the layer's
    own ghost rows n_own + 1 and 0."""
    cdef Py_ssize_t i, B = batch
    cdef floating* first = <floating*>L.deltas + B
    cdef floating* last = <floating*>L.deltas + (L.rows - 2) * B
    for i in range(B):
        first[i] += to_first[i]
    for i in range(B):
        last[i] += to_last[i]


cdef inline void _wrap_ghosts(Layer* L, int batch, floating* like) noexcept nogil:
    """A ring of one rank: ghostTop (row 0) := its last own row, ghostBottom := its first
    (`like` only picks the dtype)."""
    cdef Py_ssize_t i, B = batch
    cdef floating* acts = <floating*>L.acts
    for i in range(B):
        acts[i] = acts[(L.rows - 2) * B + i]
        acts[(L.rows - 1) * B + i] = acts[B + i]


cdef inline void _compute(Layer* L, Piece* p, int lo, int hi, int batch, floating* h,
                          floating* scratch) noexcept nogil:
    """Own rows of the piece's neurons lo <= j < hi := act(W[:, j].T @ H[inputs] + b_j)."""
    cdef Py_ssize_t B = batch
    forward_core(p.n_in, hi - lo, batch, h + p.in_row * B, <floating*>p.w + lo, p.n_out,
                 <floating*>p.b + lo, <floating*>L.acts + (L.own_row + p.out_row + lo) * B,
                 L.act, scratch)


cdef int _forward(Step s, floating* x) except -1:
    cdef Py_ssize_t i, j, B = s.batch, n0 = s.n_inputs
    cdef int l, k, begin, end, batch = s.batch
    cdef floating* xt = <floating*>s.xt
    cdef floating* scratch = <floating*>s.scratch
    cdef floating* h
    cdef Layer* L
    cdef Piece* p
    cdef Piece* first
    cdef Piece* last
    with nogil:
        for i in range(B):
            for j in range(n0):
                xt[j * B + i] = x[i * n0 + j]
    for l in range(s.n_layers):
        L = &s.layers[l]
        h = xt if l == 0 else <floating*>s.layers[l - 1].acts
        if L.forward == HALO:
            # Boundary neurons first, then post the halo, then the interior while it travels.
            first, last = &L.pieces[0], &L.pieces[L.n_pieces - 1]
            with nogil:
                _compute(L, first, 0, 1, batch, h, scratch)
                if last != first or last.n_out > 1:
                    _compute(L, last, last.n_out - 1, last.n_out, batch, h, scratch)
            _exchange(s, &L.forward_requests, "post_halo", l, START)
            with nogil:
                for k in range(L.n_pieces):
                    p = &L.pieces[k]
                    begin = 1 if p == first else 0
                    end = p.n_out - 1 if p == last else p.n_out
                    if begin < end:
                        _compute(L, p, begin, end, batch, h, scratch)
            _exchange(s, &L.forward_requests, "wait_halo", l, WAIT)
            continue
        with nogil:
            for k in range(L.n_pieces):
                _compute(L, &L.pieces[k], 0, L.pieces[k].n_out, batch, h, scratch)
        if L.forward == GATHER:
            _exchange(s, &L.forward_requests, "gather", l, START | WAIT)
        elif L.forward == WRAP:
            with nogil:
                _wrap_ghosts(L, batch, h)
        if L.post_softmax:
            with nogil:
                bias_activation_core(L.rows, batch, <floating*>L.acts, NULL, SOFTMAX, scratch)
    return 0


cdef double _loss(Step s, floating* rows, long long* labels, floating* weights,
                  double total) except? -1:
    cdef Layer* L = &s.layers[s.n_layers - 1]
    cdef double result
    with nogil:
        result = output_delta_core(s.n_outputs, s.batch, <floating*>L.acts, rows, 1, s.n_outputs,
                                   labels, weights, total, <floating*>L.deltas, s.output_act,
                                   s.loss, <floating*>s.scratch)
    return result


cdef int _backward(Step s, floating lr, int mode, long step, bint notify) except -1:
    cdef int l, k, batch = s.batch
    cdef Py_ssize_t B = batch
    cdef Layer* L
    cdef Layer* P
    cdef Piece* p
    cdef floating* delta
    cdef floating* h
    cdef floating* target
    cdef bint fused, split = s.split_rows and mode == UPDATE
    for l in range(s.n_layers - 1, -1, -1):
        L = &s.layers[l]
        delta = _own_deltas(L, batch, delta)
        h = <floating*>s.xt if l == 0 else <floating*>s.layers[l - 1].acts
        fused = False
        # The previous layer's deltas, from this layer's weights before they change (a
        # replica without samples has none to compute).
        if l > 0 and batch > 0:
            P = &s.layers[l - 1]
            p = &L.pieces[0]
            fused = (mode == UPDATE and s.fused_rows and not split and batch == 1
                     and L.n_pieces == 1
                     and P.backward in (LOCAL, REDUCE_SCATTER)
                     and p.n_in * <Py_ssize_t>p.n_out * sizeof(floating) >= FUSED_ROW_MIN_BYTES)
            with nogil:
                if P.backward in (HALO_EXACT, HALO_LOCAL, WRAP_EXACT):
                    memset(P.deltas, 0, P.rows * B * sizeof(floating))
                    for k in range(L.n_pieces):
                        p = &L.pieces[k]
                        if P.backward != HALO_LOCAL:
                            backprop_core(p.n_in, p.n_out, batch, delta + p.out_row * B,
                                          <floating*>p.w, <floating*>P.deltas + p.in_row * B, 1)
                        else:   # ghosts are constants: only the block's own inputs get deltas
                            backprop_core(p.n_in - 2, p.n_out, batch, delta + p.out_row * B,
                                          <floating*>p.w + p.n_out,
                                          <floating*>P.deltas + (p.in_row + 1) * B, 1)
                else:
                    target = (<floating*>P.deltas if P.backward == REDUCE_SCATTER
                              else _own_deltas(P, batch, delta))
                    if fused:
                        fused_delta_update_core(p.n_in, p.n_out, h, <floating*>p.w,
                                                <floating*>p.b, delta, target, IDENTITY, lr)
                    else:
                        backprop_core(p.n_in, p.n_out, batch, delta, <floating*>p.w, target, 0)
            if P.backward == HALO_EXACT:
                _exchange(s, &P.backward_requests, "reverse_halo", l - 1, START | WAIT)
                with nogil:
                    _add_ghost_deltas(P, batch, <floating*>s.inbox, <floating*>s.inbox + B)
            elif P.backward == WRAP_EXACT:
                with nogil:
                    _add_ghost_deltas(P, batch, <floating*>P.deltas + (P.rows - 1) * B,
                                      <floating*>P.deltas)
            elif P.backward == REDUCE_SCATTER:
                _exchange(s, &P.backward_requests, "reduce_scatter", l - 1, START | WAIT)
            with nogil:
                derivative_core(P.n_own, batch, _own_deltas(P, batch, delta),
                                <floating*>P.acts + P.own_row * B, P.act)
        if split:
            continue            # every layer's deltas first; then the rows of every layer
        if not fused:
            with nogil:
                for k in range(L.n_pieces):
                    _update(s, &L.pieces[k], h, delta, batch, mode, lr, step)
        if notify:
            s.exchange.gradients_done(l)
    if split:
        _update_split_rows(s, lr, step)
    return 0


cdef int _update_split_rows(Step s, floating lr, long step) except -1:
    """Replicas that share memory, once every layer's deltas are written: the sum of their
    losses (every replica has then read every weight of this step: none changes before),
    this replica's rows of every piece unless that sum is not finite, and a wait that ends
    the step (every row written before anyone's next forward pass)."""
    cdef int l, k
    _exchange(s, &s.loss_sum, "loss_sum", s.n_layers - 1, START | WAIT)
    if not isfinite((<floating*>s.loss_slot)[0]):
        return 0        # no replica updates
    with nogil:
        for l in range(s.n_layers):
            for k in range(s.layers[l].n_pieces):
                _update_rows(s, l, &s.layers[l].pieces[k], lr, step)
    _exchange(s, &s.replica_sync, "replica_sync", -1, START | WAIT)
    return 0


cdef inline floating* _shifted(void* pointer, Py_ssize_t shift, floating like) noexcept nogil:
    """The pointer `shift` bytes on: the same value in another replica's memory."""
    return <floating*>(<char*>pointer + shift)


cdef inline void _slice(int n, int parts, int index, int* lo, int* hi) noexcept nogil:
    """[lo, hi) of part `index` of n items in contiguous slices (partition.slice_bounds)."""
    cdef int base = n // parts, extra = n % parts
    lo[0] = index * base + (index if index < extra else extra)
    hi[0] = lo[0] + base + (1 if index < extra else 0)


cdef void _update_rows(Step s, int l, Piece* p, floating lr, long step) noexcept nogil:
    """This replica's rows of the piece's W and its share of b (values that every replica
    shares): the optimizer's update from every replica's samples (their inputs and deltas
    read where they lie), as _update and _apply do for all of them on one replica."""
    cdef Layer* L = &s.layers[l]
    cdef int e, r0, r1, c0, c1, batch
    cdef Py_ssize_t n_out = p.n_out, w0, size
    cdef floating m = s.momentum, wd = s.weight_decay
    cdef floating alpha = 1, beta = 0, bias_beta = 0
    cdef floating* h
    cdef floating* delta
    cdef void* inputs = s.xt if l == 0 else s.layers[l - 1].acts
    cdef floating* target = <floating*>p.gw
    cdef floating* target_bias = <floating*>p.gb
    _slice(p.n_in, s.n_replicas, s.replica, &r0, &r1)
    _slice(p.n_out, s.n_replicas, s.replica, &c0, &c1)
    w0, size = r0 * n_out, (r1 - r0) * n_out
    if s.optimizer == SGD and m == 0:
        target, target_bias, alpha, beta, bias_beta = <floating*>p.w, <floating*>p.b, -lr, 1 - lr * wd, 1
    elif s.optimizer == SGD and not s.nesterov:
        target, target_bias, beta, bias_beta = <floating*>p.state[0], <floating*>p.state[1], m, m
    for e in range(s.n_replicas):
        batch = s.replica_batch[e]
        if batch == 0:
            continue
        h = _shifted(inputs, s.buffer_shift[e], lr) + (p.in_row + r0) * <Py_ssize_t>batch
        delta = _shifted(_own_deltas(L, batch, target), s.buffer_shift[e], lr) + p.out_row * <Py_ssize_t>batch
        if r1 > r0:
            weights_outer_core(r1 - r0, p.n_out, batch, h, delta, target + w0, alpha, beta)
        bias_sum_core(c1 - c0, batch, delta + c0 * <Py_ssize_t>batch, target_bias + c0, alpha,
                      bias_beta)
        beta = bias_beta = 1
    if s.optimizer == SGD and m != 0 and not s.nesterov:
        momentum_apply_core(size, <floating*>p.w + w0, <floating*>p.state[0] + w0, lr, wd)
        momentum_apply_core(c1 - c0, <floating*>p.b + c0, <floating*>p.state[1] + c0, lr, 0)
    elif not (s.optimizer == SGD and m == 0):
        _apply_range(s, p, lr, step, w0, w0 + size, c0, c1)


cdef inline void _update(Step s, Piece* p, floating* h, floating* delta, int batch, int mode,
                         floating lr, long step) noexcept nogil:
    """The piece's gradient into its buffers (GRADIENTS), or the optimizer's update (UPDATE).

    Fused into the gradient GEMM where the optimizer allows it: SGD without momentum
    W := (1 - lr wd) W - lr g; SGD with momentum (not Nesterov) buf := m buf + g, then
    momentum_apply_core. Otherwise the gradient goes to its buffers and _apply follows.
    """
    cdef Py_ssize_t B = batch
    cdef floating* hp = h + p.in_row * B
    cdef floating* dp = delta + p.out_row * B
    cdef floating m = s.momentum, wd = s.weight_decay
    if mode == UPDATE and s.optimizer == SGD and m == 0:
        outer_core(p.n_in, p.n_out, batch, hp, dp, <floating*>p.w, <floating*>p.b, -lr,
                   1 - lr * wd, 1)
    elif mode == UPDATE and s.optimizer == SGD and not s.nesterov:
        outer_core(p.n_in, p.n_out, batch, hp, dp, <floating*>p.state[0],
                   <floating*>p.state[1], 1, m, m)
        momentum_apply_core(p.n_in * <Py_ssize_t>p.n_out, <floating*>p.w,
                            <floating*>p.state[0], lr, wd)
        momentum_apply_core(p.n_out, <floating*>p.b, <floating*>p.state[1], lr, 0)
    else:
        outer_core(p.n_in, p.n_out, batch, hp, dp, <floating*>p.gw, <floating*>p.gb, 1, 0, 0)
        if mode == UPDATE:
            _apply(s, p, lr, step)


cdef inline void _apply(Step s, Piece* p, floating lr, long step) noexcept nogil:
    """The optimizer's pass over W and b from their gradients; biases are never decayed."""
    _apply_range(s, p, lr, step, 0, p.n_in * <Py_ssize_t>p.n_out, 0, p.n_out)


cdef inline void _apply_range(Step s, Piece* p, floating lr, long step, Py_ssize_t w0,
                              Py_ssize_t w1, int b0, int b1) noexcept nogil:
    """_apply over W's flat values w0 <= i < w1 and b's b0 <= j < b1 only."""
    cdef double c1, c2
    if s.optimizer == SGD:
        sgd_core(w1 - w0, <floating*>p.w + w0, <floating*>p.gw + w0, <floating*>p.state[0] + w0,
                 lr, s.momentum, s.weight_decay, s.nesterov)
        sgd_core(b1 - b0, <floating*>p.b + b0, <floating*>p.gb + b0, <floating*>p.state[1] + b0,
                 lr, s.momentum, 0, s.nesterov)
    else:
        c1, c2 = 1 - pow(s.beta1, step), 1 - pow(s.beta2, step)
        adam_core(w1 - w0, <floating*>p.w + w0, <floating*>p.gw + w0, <floating*>p.state[0] + w0,
                  <floating*>p.state[2] + w0, lr, s.beta1, s.beta2, s.eps, s.weight_decay,
                  s.optimizer == ADAMW, c1, c2)
        adam_core(b1 - b0, <floating*>p.b + b0, <floating*>p.gb + b0, <floating*>p.state[1] + b0,
                  <floating*>p.state[3] + b0, lr, s.beta1, s.beta2, s.eps, 0, False, c1, c2)


cdef int _apply_all(Step s, floating lr, long step, int first, int last) except -1:
    cdef int l, k
    with nogil:
        for l in range(first, last + 1):
            for k in range(s.layers[l].n_pieces):
                _apply(s, &s.layers[l].pieces[k], lr, step)
    return 0
