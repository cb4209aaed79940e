# The plan of one step as C structs, and the Step's state (see _step.pyx).
from ghostmlp._mpi cimport Requests

cdef enum:
    # What follows a layer's pieces in the forward pass.
    NO_EXCHANGE = 0
    HALO = 1            # ghost rows to and from the ring neighbours, overlapping the interior
    GATHER = 2          # every rank's own rows gathered into the whole layer
    WRAP = 3            # a ring of one rank: its ghost rows are copies of its boundary rows
    # How a layer's own deltas are formed from the next layer's.
    LOCAL = 0           # straight into the own rows: this rank holds the whole next layer
    REDUCE_SCATTER = 1  # partial sums over the whole layer, reduced onto each owner
    HALO_EXACT = 2      # into the halo rows; the ghost rows' deltas go back to their owners
    HALO_LOCAL = 3      # into the own rows only: ghosts are constants
    WRAP_EXACT = 4      # HALO_EXACT on a ring of one rank: the ghost rows' deltas added locally
    # What backward() does with the weight gradients.
    UPDATE = 0          # the optimizer's update, fused into the gradient GEMM where it allows
    GRADIENTS = 1       # write them to the gradient buffers; change nothing


cdef struct Piece:
    int n_in, n_out
    int in_row          # first row of its inputs in the layer's input buffer
    int out_row         # first row of its outputs among the layer's own rows
    void* w             # W[n_in, n_out]
    void* b             # b[n_out]
    void* gw            # gradients of the same shapes, or NULL
    void* gb
    void* state[4]      # optimizer state k: state[2k] W-shaped, state[2k + 1] b-shaped


cdef struct Layer:
    int rows            # rows of the activation and delta buffers
    int own_row         # first of the n_own rows this rank computes
    int n_own
    int act             # the pieces' activation
    bint post_softmax   # softmax over the gathered layer after the pieces (split output)
    int forward         # NO_EXCHANGE, HALO, GATHER or WRAP
    int backward        # LOCAL, REDUCE_SCATTER, HALO_EXACT, HALO_LOCAL or WRAP_EXACT
    Requests forward_requests   # the forward exchange (HALO, GATHER) at the bound batch,
    Requests backward_requests  # and the backward one (REDUCE_SCATTER, HALO_EXACT); or none
    int n_pieces
    Piece* pieces
    void* acts          # [rows, B]
    void* deltas        # [rows, B]
    void* own_deltas    # [n_own, B] for REDUCE_SCATTER, else NULL (own rows of deltas)


cdef class Step:
    cdef int n_layers, n_inputs, n_outputs, capacity, batch, typenum, loss, output_act
    cdef int exchange_batch     # the batch the layers' requests are bound for (0: none)
    cdef int optimizer
    cdef double momentum, weight_decay, beta1, beta2, eps
    cdef bint nesterov, is_worker, fused_rows, has_gradients, reduce_gradients
    cdef int n_states           # the optimizer's state buffers per piece
    # Replicas that share memory (split_rows): D of them, this one `replica`, one copy of
    # the parameters' values; each updates its rows of every piece from all their samples.
    cdef bint split_rows
    cdef int n_replicas, replica
    cdef Py_ssize_t* buffer_shift   # bytes from this rank's buffers to replica e's
    cdef int* replica_batch         # replica e's share of the current batch
    cdef Requests replica_sync      # a barrier of the replicas, and the sum of their
    cdef Requests loss_sum          # losses in loss_slot (or none: the exchange's methods)
    cdef Layer* layers
    cdef void* xt
    cdef void* scratch
    cdef void* inbox    # [2, B]: the neighbours' deltas of this rank's boundary rows (HALO_EXACT)
    cdef object exchange, keep, compiled
    cdef void* loss_slot

    cdef _backward(self, int mode, double lr, long step)
    cdef _bind_exchange(self, int batch)
