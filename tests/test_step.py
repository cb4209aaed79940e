"""The serial plan's Step (one training step over the parameters' blocks) against a numpy MLP.

The reference works on row-major samples X[B, n_0] in float64 from the same (rounded)
parameters: a_l = act_l(a_{l-1} @ W_l + b_l), the batch-mean loss and its delta, plain
back-propagation, and the optimizers' rules as torch.optim writes them (d = g + wd W):
SGD W -= lr d; momentum V := m V + d, W -= lr V (Nesterov: W -= lr (d + m V)); Adam
m := b1 m + (1 - b1) d, v := b2 v + (1 - b2) d^2, W -= lr m_hat / (sqrt(v_hat) + eps)
(AdamW: W *= 1 - lr wd first, d = g). Biases never decay.
The step keeps activations and deltas neuron-major: layer l's values for a batch B are
``activations[l][:n * B].reshape(n, B)``.
"""
import numpy as np
import pytest

from ghostmlp import _kernels as K
from ghostmlp._kernels import CROSS_ENTROPY, EXP, IDENTITY, MSE, POISSON, RELU, SIGMOID, SOFTMAX, TANH
from ghostmlp._step import Step
from ghostmlp.layout import Buffers, Layout
from ghostmlp.optim import SGD, Adam, AdamW
from ghostmlp.params import Parameters
from reference import act_ref, assert_finite_close, deriv_ref, f64, loss_delta_ref, rng_for

DTYPES = [np.float32, np.float64]
# Several layers deep, so a little looser than the single-kernel RTOL (2e-5, 1e-12).
RTOL = {np.float32: 1e-4, np.float64: 1e-10}
CAPACITY = 6

# name -> (sizes, activation codes, loss)
CONFIGS = {
    "tanh-softmax-ce": ([7, 13, 5], [TANH, SOFTMAX], CROSS_ENTROPY),
    "sigmoid-sigmoid-mse": ([5, 31, 3], [SIGMOID, SIGMOID], MSE),
    "relu-tanh-identity-mse": ([13, 17, 7, 4], [RELU, TANH, IDENTITY], MSE),
    "sigmoid-sigmoid-ce": ([6, 11, 4], [SIGMOID, SIGMOID], CROSS_ENTROPY),
    "relu-softmax-mse": ([4, 9, 6], [RELU, SOFTMAX], MSE),
    # at batch 1 layer 1 (600 x 450 weights >= FUSED_ROW_MIN_BYTES) takes the fused row pass
    "fused-sigmoid-tanh-softmax-ce": ([5, 600, 450, 3], [SIGMOID, TANH, SOFTMAX], CROSS_ENTROPY),
    # exactly at the threshold in float32, relu before it (its derivative in the fused pass)
    "fused-relu-relu-sigmoid-mse": ([4, 512, 512, 2], [RELU, RELU, SIGMOID], MSE),
    # identity hidden layers, one of them before the fused layer (act' = 1 there)
    "identity-tanh-exp-poisson": ([7, 11, 6, 4], [IDENTITY, TANH, EXP], POISSON),
    "fused-identity-sigmoid-softmax-ce": ([4, 512, 512, 3], [IDENTITY, SIGMOID, SOFTMAX],
                                          CROSS_ENTROPY),
}
BATCHES = [1, 4, CAPACITY]

dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
configs = pytest.mark.parametrize("config", list(CONFIGS))
batches = pytest.mark.parametrize("batch", BATCHES, ids=lambda b: f"B{b}")


def test_fused_configs_reach_the_threshold():
    sizes = CONFIGS["fused-sigmoid-tanh-softmax-ce"][0]
    assert sizes[1] * sizes[2] * 4 >= K.FUSED_ROW_MIN_BYTES
    for name in ("fused-relu-relu-sigmoid-mse", "fused-identity-sigmoid-softmax-ce"):
        sizes = CONFIGS[name][0]
        assert sizes[1] * sizes[2] * 4 == K.FUSED_ROW_MIN_BYTES


# ------------------------------------------------------------- numpy reference

class RefMLP:
    """Float64 copy of the network; all samples row-major."""

    def __init__(self, weights, biases, acts, loss):
        self.W = [f64(w).copy() for w in weights]
        self.b = [f64(b).copy() for b in biases]
        self.state = [[np.zeros_like(p) for p in self.W + self.b] for _ in range(2)]
        self.t = 0
        self.acts, self.loss = list(acts), loss

    def forward(self, X):
        A = [f64(X)]
        for W, b, act in zip(self.W, self.b, self.acts):
            A.append(act_ref(A[-1] @ W + b, act, axis=1))
        return A

    def loss_delta(self, aL, Y, weights=None):
        """(Weighted) batch-mean loss and D_L = d(mean loss)/dz_L, rows = samples."""
        return loss_delta_ref(aL, Y, self.acts[-1], self.loss, axis=1, weights=weights)

    def gradients(self, X, Y, weights=None):
        A = self.forward(X)
        value, D = self.loss_delta(A[-1], Y, weights)
        n = len(self.W)
        gW, gb = [None] * n, [None] * n
        for l in range(n - 1, -1, -1):
            gW[l] = A[l].T @ D
            gb[l] = D.sum(axis=0)
            if l > 0:
                D = (D @ self.W[l].T) * deriv_ref(A[l], self.acts[l - 1])     # old W_l
        return value, gW, gb, A

    def step(self, X, Y, optimizer, lr=None, weights=None):
        """One step of `optimizer` (at rate lr, default its own); returns the loss."""
        value, gW, gb, _ = self.gradients(X, Y, weights)
        self.t += 1
        lr = optimizer.lr if lr is None else lr
        params, n = self.W + self.b, len(self.W)
        for i, (p, g) in enumerate(zip(params, gW + gb)):
            wd = optimizer.weight_decay if i < n else 0.0        # biases never decay
            m, v = self.state[0][i], self.state[1][i]
            if isinstance(optimizer, SGD):
                d = g + wd * p
                if optimizer.momentum:
                    m[...] = optimizer.momentum * m + d
                    d = d + optimizer.momentum * m if optimizer.nesterov else m
                p -= lr * d
                continue
            b1, b2 = optimizer.betas
            if isinstance(optimizer, AdamW):
                p *= 1 - lr * wd
                d = g
            else:
                d = g + wd * p
            m[...] = b1 * m + (1 - b1) * d
            v[...] = b2 * v + (1 - b2) * d * d
            m_hat, v_hat = m / (1 - b1 ** self.t), v / (1 - b2 ** self.t)
            p -= lr * m_hat / (np.sqrt(v_hat) + optimizer.eps)
        return value


# --------------------------------------------------------------------- set-up

class Net:
    """The serial plan's Step, its parameters and buffers, and a float64 reference."""

    def __init__(self, config, dtype, seed_key, optimizer=None, capacity=CAPACITY):
        sizes, acts, loss = CONFIGS[config]
        self.sizes, self.acts, self.loss, self.dtype = sizes, acts, loss, dtype
        self.optimizer = optimizer or SGD(0.1)
        self.rng = rng_for(config, np.dtype(dtype).name, *seed_key)
        layout = Layout(sizes, acts)
        self.params = Parameters(layout.new_pieces(), sizes[:-1], dtype,
                                 self.optimizer.state_names, gradients=True)
        pieces = [layer[0] for layer in self.params.layers]
        self.weights = [piece.weights for piece in pieces]
        self.biases = [piece.bias for piece in pieces]
        self.grads = [(piece.grad_weights, piece.grad_bias) for piece in pieces]
        self.state = [piece.state for piece in pieces]
        for w, b in zip(self.weights, self.biases):
            w[...] = self.rng.normal(0.0, 1.0, w.shape) / np.sqrt(w.shape[0])
            b[...] = self.rng.normal(0.0, 0.3, b.shape)
        buffers = Buffers(layout, capacity, dtype)
        for flat in buffers.acts + buffers.deltas + [buffers.inputs_t]:
            flat[:] = np.nan
        self.activations, self.deltas = buffers.acts, buffers.deltas
        self.inputs_t = buffers.inputs_t
        self.stack = Step(layout, self.params.layers, buffers, self.optimizer.kernel_args(),
                          None, loss, acts[-1], True)
        self.ref = RefMLP(self.weights, self.biases, acts, loss)

    def view(self, buffers, l, batch):
        n = self.sizes[1:][l]
        return buffers[l][:n * batch].reshape(n, batch)

    def inputs(self, batch):
        return self.rng.normal(0.0, 1.0, (batch, self.sizes[0])).astype(self.dtype)

    def labels(self, batch):
        return self.rng.integers(0, self.sizes[-1], batch).astype(np.int64)

    def dense_targets(self, batch):
        """Y[B, n_out] of the network's dtype, plausible for its output and loss."""
        n = self.sizes[-1]
        if self.acts[-1] == SOFTMAX:
            r = self.rng.uniform(0.05, 1.0, (batch, n))
            y = r / r.sum(axis=1, keepdims=True)
        elif self.acts[-1] == SIGMOID:
            y = self.rng.uniform(0.0, 1.0, (batch, n))
        elif self.acts[-1] == EXP:
            y = self.rng.poisson(1.5, (batch, n))          # counts, zeros among them
        else:
            y = self.rng.normal(0.0, 1.0, (batch, n))
        return y.astype(self.dtype)

    def one_hot(self, labels):
        y = np.zeros((len(labels), self.sizes[-1]))
        y[np.arange(len(labels)), labels] = 1.0
        return y


def assert_loss(got, ref, dtype):
    """Batch-mean loss: relative, plus a few ulps of 1 (a confident -log a ~ 1 - a)."""
    assert isinstance(got, float)
    np.testing.assert_allclose(got, ref, rtol=RTOL[dtype], atol=10 * np.finfo(dtype).eps)


def assert_close(got, ref, dtype, scale=None, rtol=None):
    """rtol = RTOL[dtype], atol = rtol * scale (default: the largest |ref|)."""
    assert_finite_close(got, ref, dtype, RTOL[dtype] if rtol is None else rtol,
                        np.abs(ref) if scale is None else scale)


# ------------------------------------------------------------------- forward

@dtypes
@configs
@batches
def test_forward(dtype, config, batch):
    net = Net(config, dtype, ("forward", batch))
    X = net.inputs(batch)
    assert net.stack.batch == 0
    net.stack.forward(X)
    assert net.stack.batch == batch
    A = net.ref.forward(X)
    for l in range(len(net.weights)):
        assert_close(net.view(net.activations, l, batch), A[l + 1].T, dtype)
    assert_close(net.inputs_t[:net.sizes[0] * batch].reshape(-1, batch), f64(X).T, dtype,
                 rtol=0)
    # nothing beyond the batch is touched
    n_out = net.sizes[-1]
    assert np.all(np.isnan(net.activations[-1][n_out * batch:]))


# ---------------------------------------------------------------- loss_delta

@dtypes
@configs
@batches
def test_loss_delta_labels_and_dense(dtype, config, batch):
    net = Net(config, dtype, ("loss", batch))
    X = net.inputs(batch)
    net.stack.forward(X)
    aL = net.ref.forward(X)[-1]
    out = net.view(net.activations, -1, batch).copy()

    labels = net.labels(batch)
    value, D = net.ref.loss_delta(aL, net.one_hot(labels))
    got = net.stack.loss_delta(labels)
    assert_loss(got, value, dtype)
    assert_close(net.view(net.deltas, -1, batch), D.T, dtype)

    Y = net.dense_targets(batch)
    value, D = net.ref.loss_delta(aL, f64(Y))
    got = net.stack.loss_delta(Y)
    assert_loss(got, value, dtype)
    assert_close(net.view(net.deltas, -1, batch), D.T, dtype)
    # loss_delta reads the outputs, never writes them
    np.testing.assert_array_equal(net.view(net.activations, -1, batch), out)


# ----------------------------------------------------------------- gradients

@dtypes
@configs
@batches
@pytest.mark.parametrize("target", ["labels", "dense"])
def test_gradients(dtype, config, batch, target):
    net = Net(config, dtype, ("grad", batch, target))
    X = net.inputs(batch)
    T = net.labels(batch) if target == "labels" else net.dense_targets(batch)
    Y = net.one_hot(T) if target == "labels" else f64(T)
    before = [w.copy() for w in net.weights] + [b.copy() for b in net.biases]
    for gw, gb in net.grads:
        gw[...], gb[...] = np.nan, np.nan
    net.stack.forward(X)
    loss = net.stack.loss_delta(T)
    net.stack.gradients()
    gw, gb = [g for g, _ in net.grads], [g for _, g in net.grads]
    value, ref_gw, ref_gb, A = net.ref.gradients(X, Y)
    assert_loss(loss, value, dtype)
    for l in range(len(gw)):
        assert_close(gw[l], ref_gw[l], dtype, scale=max(np.max(np.abs(ref_gw[l])), 1e-3))
        assert_close(gb[l], ref_gb[l], dtype, scale=max(np.max(np.abs(ref_gb[l])), 1e-3))
    for now, then in zip(net.weights + net.biases, before):
        np.testing.assert_array_equal(now, then)         # gradients() updates nothing


@dtypes
@configs
@batches
def test_weighted_gradients(dtype, config, batch):
    """Deltas scaled by w_i / sum_i w_i (scikit-learn's rule), a zero weight included."""
    net = Net(config, dtype, ("weighted", batch))
    X, T = net.inputs(batch), net.dense_targets(batch)
    w = net.rng.uniform(0.2, 3.0, batch).astype(dtype)
    w[0] = 0.0 if batch > 1 else w[0]
    net.stack.forward(X)
    loss = net.stack.loss_delta(T, w)
    net.stack.gradients()
    value, ref_gw, ref_gb, _ = net.ref.gradients(X, f64(T), w)
    assert_loss(loss, value, dtype)
    for (gw, gb), rw, rb in zip(net.grads, ref_gw, ref_gb):
        assert_close(gw, rw, dtype, scale=max(np.max(np.abs(rw)), 1e-3))
        assert_close(gb, rb, dtype, scale=max(np.max(np.abs(rb)), 1e-3))


@pytest.mark.parametrize("config", ["identity-tanh-exp-poisson", "tanh-softmax-ce"])
def test_shares_with_the_global_total_sum_to_the_whole(config):
    """loss_delta(T[share], w[share], total=sum(w)): the shares' losses and gradients add up."""
    net = Net(config, np.float64, ("shares",))
    X, T = net.inputs(CAPACITY), net.dense_targets(CAPACITY)
    w = net.rng.uniform(0.0, 2.0, CAPACITY)
    net.stack.forward(X)
    whole = net.stack.loss_delta(T, w)
    net.stack.gradients()
    expected = [g.copy() for pair in net.grads for g in pair]
    loss, summed = 0.0, [np.zeros_like(g) for g in expected]
    for share in (slice(0, 2), slice(2, CAPACITY)):
        net.stack.forward(X[share])
        loss += net.stack.loss_delta(T[share], w[share], float(np.sum(w)))
        net.stack.gradients()
        for acc, g in zip(summed, (g for pair in net.grads for g in pair)):
            acc += g
    assert loss == pytest.approx(whole, rel=1e-13)
    for got, ref in zip(summed, expected):
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-14)


# ------------------------------------------------------------------ backward

STEP_RTOL = {np.float32: 1e-3, np.float64: 1e-9}       # on the parameter displacement


def check_parameters(net, start, dtype):
    """Parameters equal the reference's, and so do their displacements since `start`.

    Adam in float32 is compared in norm: it moves every weight by about lr whatever the
    size of its gradient, so a gradient within rounding of 0 may step either way.
    """
    in_norm = dtype == np.float32 and not isinstance(net.optimizer, SGD)
    for l in range(len(net.weights)):
        for got, ref, s in ((net.weights[l], net.ref.W[l], start[0][l]),
                            (net.biases[l], net.ref.b[l], start[1][l])):
            moved = ref - s
            assert np.max(np.abs(moved)) > 0
            if in_norm:
                assert np.linalg.norm(f64(got) - ref) <= 1e-2 * np.linalg.norm(moved)
                continue
            assert_close(got, ref, dtype)
            np.testing.assert_allclose(f64(got) - s, moved, rtol=STEP_RTOL[dtype],
                                       atol=STEP_RTOL[dtype] * float(np.max(np.abs(moved))))


def run_steps(net, batch, dtype, use_train=False, steps=3):
    """`steps` steps of the net's optimizer, each checked against the reference's."""
    start = ([f64(w).copy() for w in net.weights], [f64(b).copy() for b in net.biases])
    lr = net.optimizer.lr
    for t in range(1, steps + 1):
        X = net.inputs(batch)
        labels = net.labels(batch)
        value = net.ref.step(X, net.one_hot(labels), net.optimizer)
        if use_train:
            got = net.stack.train(X, labels, lr, t)
        else:
            net.stack.forward(X)
            got = net.stack.loss_delta(labels)
            net.stack.backward(lr, t)
        assert_loss(got, value, dtype)
        check_parameters(net, start, dtype)


@dtypes
@configs
@batches
def test_backward_sgd(dtype, config, batch):
    net = Net(config, dtype, ("sgd", batch))
    run_steps(net, batch, dtype)


OPTIMIZERS = {
    "momentum-wd": SGD(0.1, momentum=0.9, weight_decay=0.05),
    "nesterov-wd": SGD(0.1, momentum=0.9, nesterov=True, weight_decay=0.05),
    "adam": Adam(0.01),
    "adam-l2": Adam(0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    "adamw": AdamW(0.01, weight_decay=0.1),
}


@dtypes
@configs
@batches
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_backward_optimizers(dtype, config, batch, name):
    net = Net(config, dtype, (name, batch), OPTIMIZERS[name])
    run_steps(net, batch, dtype)
    n = len(net.weights)
    if dtype == np.float32 and not isinstance(net.optimizer, SGD):
        return
    for k, name in enumerate(net.optimizer.state_names):     # the state buffers too
        for l in range(n):
            assert_close(net.state[l][k][0], net.ref.state[k][l], dtype)
            assert_close(net.state[l][k][1], net.ref.state[k][n + l], dtype)


@dtypes
@configs
@pytest.mark.parametrize("batch", [1, 4], ids=lambda b: f"B{b}")
def test_backward_sgd_weight_decay_weights(dtype, config, batch):
    """W := (1 - lr wd) W - lr g (the biases are checked separately below)."""
    net = Net(config, dtype, ("sgd-wd", batch), SGD(0.1, weight_decay=0.05))
    start = [f64(w).copy() for w in net.weights]
    for t in range(1, 4):
        X, labels = net.inputs(batch), net.labels(batch)
        value = net.ref.step(X, net.one_hot(labels), net.optimizer)
        net.stack.forward(X)
        assert_loss(net.stack.loss_delta(labels), value, dtype)
        net.stack.backward(0.1, t)
        # the reference's biases follow the stack's, so only W is compared here
        net.ref.b = [f64(b).copy() for b in net.biases]
        for l, w in enumerate(net.weights):
            assert_close(w, net.ref.W[l], dtype)
            moved = net.ref.W[l] - start[l]
            np.testing.assert_allclose(f64(w) - start[l], moved, rtol=STEP_RTOL[dtype],
                                       atol=STEP_RTOL[dtype] * float(np.max(np.abs(moved))))


@dtypes
def test_backward_sgd_weight_decay_leaves_biases_undecayed(dtype):
    lr = 0.1
    net = Net("sigmoid-sigmoid-mse", dtype, ("sgd-wd-bias",), SGD(lr, weight_decay=0.5))
    X, labels = net.inputs(4), net.labels(4)
    _, _, ref_gb, _ = net.ref.gradients(X, net.one_hot(labels))
    b0 = [f64(b).copy() for b in net.biases]
    net.stack.forward(X)
    net.stack.loss_delta(labels)
    net.stack.backward(lr, 1)
    for l, b in enumerate(net.biases):
        assert_close(b, b0[l] - lr * ref_gb[l], dtype)


@dtypes
@pytest.mark.parametrize("config", ["tanh-softmax-ce", "fused-sigmoid-tanh-softmax-ce"])
@pytest.mark.parametrize("batch", [1, 4], ids=lambda b: f"B{b}")
def test_train_is_forward_loss_backward(dtype, config, batch):
    net = Net(config, dtype, ("step", batch))
    run_steps(net, batch, dtype, use_train=True)


@dtypes
@pytest.mark.parametrize("config", ["identity-tanh-exp-poisson", "fused-identity-sigmoid-softmax-ce"])
@pytest.mark.parametrize("batch", [1, 4], ids=lambda b: f"B{b}")
def test_weighted_train(dtype, config, batch):
    """train(x, labels, lr, t, weights): the reference's step on the weighted loss."""
    net = Net(config, dtype, ("weighted-train", batch))      # batch 1, SGD: the fused pass
    start = ([f64(w).copy() for w in net.weights], [f64(b).copy() for b in net.biases])
    for t in range(1, 4):
        X, labels = net.inputs(batch), net.labels(batch)
        w = net.rng.uniform(0.1, 2.0, batch).astype(dtype)
        value = net.ref.step(X, net.one_hot(labels), net.optimizer, weights=w)
        assert_loss(net.stack.train(X, labels, net.optimizer.lr, t, w), value, dtype)
        check_parameters(net, start, dtype)


def test_fused_batch1_matches_gemv_path():
    """At batch 1 the fused row pass (SGD, no decay) and the gemv/ger path (tiny wd) agree."""
    a = Net("fused-sigmoid-tanh-softmax-ce", np.float64, ("fused-vs-gemv",))
    b = Net("fused-sigmoid-tanh-softmax-ce", np.float64, ("fused-vs-gemv",),
            SGD(0.1, weight_decay=1e-300))         # wd != 0 rules out the fused pass
    for w1, w2 in zip(a.weights, b.weights):
        np.testing.assert_array_equal(w1, w2)
    X, labels = a.inputs(1), a.labels(1)
    for net in (a, b):
        net.stack.forward(X)
        net.stack.loss_delta(labels)
        net.stack.backward(0.1, 1)
    for w1, w2 in zip(a.weights, b.weights):
        np.testing.assert_allclose(w1, w2, rtol=1e-13, atol=1e-15)
    for d1, d2 in zip(a.deltas, b.deltas):
        np.testing.assert_allclose(d1[:len(d1) // CAPACITY], d2[:len(d2) // CAPACITY],
                                   rtol=1e-12, atol=1e-17)


# --------------------------------------------------------------------- errors

@dtypes
def test_loss_delta_before_forward_raises(dtype):
    net = Net("tanh-softmax-ce", dtype, ("errors",))
    with pytest.raises(RuntimeError, match="forward"):
        net.stack.loss_delta(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError):
        net.stack.backward(0.1, 1)
    with pytest.raises(RuntimeError):
        net.stack.gradients()


@dtypes
def test_bad_inputs_raise_value_error(dtype):
    net = Net("tanh-softmax-ce", dtype, ("errors",))
    n0 = net.sizes[0]
    for x in (np.zeros((3, n0 + 1), dtype),          # wrong fan_in
              np.zeros(n0, dtype),                   # 1-D
              np.zeros((0, n0), dtype),              # empty batch
              np.zeros((3, n0), np.float32 if dtype == np.float64 else np.float64),
              np.zeros((n0, 3), dtype).T):           # not C-contiguous
        with pytest.raises(ValueError, match=r"\bx\b"):
            net.stack.forward(x)
    with pytest.raises(ValueError, match=r"\bx\b.*1 <= B <= %d" % CAPACITY):
        net.stack.forward(np.zeros((CAPACITY + 1, n0), dtype))
    assert net.stack.batch == 0                      # none of these ran a forward pass
    net.stack.forward(np.zeros((3, n0), dtype))
    with pytest.raises(ValueError, match="labels"):
        net.stack.loss_delta(np.zeros(2, dtype=np.int64))       # wrong batch
    with pytest.raises(ValueError, match="targets"):
        net.stack.loss_delta(np.zeros((3, net.sizes[-1] + 1), dtype))


def test_constructor_checks_buffers():
    sizes, acts, loss = CONFIGS["tanh-softmax-ce"]
    layout = Layout(sizes, acts)
    params = Parameters(layout.new_pieces(), sizes[:-1], np.float64)
    buffers = Buffers(layout, CAPACITY, np.float64)
    buffers.acts = [np.zeros(3) for _ in buffers.acts]              # too small for capacity
    with pytest.raises(ValueError, match="acts"):
        Step(layout, params.layers, buffers, SGD(0.1).kernel_args(), None, loss, acts[-1], True)
    buffers = Buffers(layout, CAPACITY, np.float32)                 # not the parameters' dtype
    with pytest.raises(ValueError, match="weights"):
        Step(layout, params.layers, buffers, SGD(0.1).kernel_args(), None, loss, acts[-1], True)


def test_constructor_checks_the_optimizers_buffers():
    sizes, acts, loss = CONFIGS["tanh-softmax-ce"]
    layout = Layout(sizes, acts)
    buffers = Buffers(layout, CAPACITY, np.float64)
    bare = Parameters(layout.new_pieces(), sizes[:-1], np.float64)     # no gradients, no state
    for optimizer in (Adam(), SGD(0.1, momentum=0.5, nesterov=True)):
        stateful = Parameters(layout.new_pieces(), sizes[:-1], np.float64, optimizer.state_names)
        with pytest.raises(ValueError, match="gradient buffers"):
            Step(layout, stateful.layers, buffers, optimizer.kernel_args(), None, loss, acts[-1],
                 True)
    with pytest.raises(ValueError, match="2 state buffers"):
        graded = Parameters(layout.new_pieces(), sizes[:-1], np.float64, gradients=True)
        Step(layout, graded.layers, buffers, Adam().kernel_args(), None, loss, acts[-1], True)
    step = Step(layout, bare.layers, buffers, SGD(0.1).kernel_args(), None, loss, acts[-1], True)
    step.forward(np.zeros((2, sizes[0])))
    step.loss_delta(np.zeros(2, dtype=np.int64))
    with pytest.raises(RuntimeError, match="gradient buffers"):
        step.gradients()
    with pytest.raises(RuntimeError, match="gradient buffers"):
        step.apply(0.1, 1)
