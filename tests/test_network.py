"""Whole serial networks: gradients against central differences, SGD by hand, learning, API errors."""
import math

import numpy as np
import pytest

from ghostmlp import Network
from ghostmlp.data import load_digits, one_hot, train_test_split

OUTPUT_LOSSES = [("softmax", "mse"), ("sigmoid", "mse"), ("identity", "mse"),
                 ("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"), ("exp", "poisson")]
HIDDEN = ["sigmoid", "tanh", "relu", "identity"]


def build(sizes, hidden="sigmoid", output="softmax", loss="mse", dtype="float64", **options):
    net = Network(seed=3, dtype=dtype, loss=loss, **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, activation=hidden)
    net.add_layer("output", sizes[-1], activation=output)
    return net.initialize()


def targets_for(output, rng, batch, n_out):
    if output == "softmax":
        return rng.integers(0, n_out, batch)                       # class indices
    if output == "sigmoid":
        return rng.uniform(0.05, 0.95, (batch, n_out))               # soft targets in (0, 1)
    if output == "exp":
        return rng.poisson(1.0, (batch, n_out)).astype(float)       # counts, zeros among them
    return rng.normal(size=(batch, n_out))


def central_differences(net, X, Y, sample_weight=None, eps=1e-6):
    """d(evaluate's loss)/d(every weight and bias), flattened in get_weights() order."""
    params = net.get_weights()
    numeric = []
    for p in (p for pair in params for p in pair):
        for index in np.ndindex(p.shape):
            saved = p[index]
            losses = []
            for step in (eps, -eps):
                p[index] = saved + step
                net.set_weights(params)
                losses.append(net.evaluate(X, Y, sample_weight)["loss"])
            p[index] = saved
            numeric.append((losses[0] - losses[1]) / (2 * eps))
    net.set_weights(params)
    return np.array(numeric)


def flat(pairs):
    return np.concatenate([g.ravel() for pair in pairs for g in pair])


def larger_weights(net, rng):
    """Larger weights than Glorot's so that every term of the gradient is well above rounding."""
    net.set_weights([(rng.normal(scale=0.8, size=w.shape), rng.normal(scale=0.3, size=b.shape))
                     for w, b in net.get_weights()])


@pytest.mark.parametrize("hidden", HIDDEN)
@pytest.mark.parametrize("output,loss", OUTPUT_LOSSES)
def test_gradients_match_central_differences(hidden, output, loss):
    rng = np.random.default_rng(7)
    sizes = [4, 7, 5, 3]
    net = build(sizes, hidden, output, loss)
    larger_weights(net, rng)
    X = rng.normal(size=(6, sizes[0]))
    Y = targets_for(output, rng, 6, sizes[-1])
    analytic = flat(net.gradients(X, Y))
    numeric = central_differences(net, X, Y)
    error = np.linalg.norm(analytic - numeric) / np.linalg.norm(numeric)
    assert np.linalg.norm(numeric) > 1e-3
    assert error < 1e-6, error


@pytest.mark.parametrize("hidden", ["tanh", "identity"])
@pytest.mark.parametrize("output,loss", OUTPUT_LOSSES)
def test_weighted_gradients_match_central_differences(hidden, output, loss):
    rng = np.random.default_rng(8)
    sizes = [3, 6, 4]
    net = build(sizes, hidden, output, loss)
    larger_weights(net, rng)
    X = rng.normal(size=(7, sizes[0]))
    Y = targets_for(output, rng, 7, sizes[-1])
    w = np.array([0.5, 0.0, 2.0, 1.0, 3.0, 0.25, 1.5])
    value, grads = net.loss_and_gradients(X, Y, sample_weight=w)
    assert value == net.evaluate(X, Y, sample_weight=w)["loss"]
    numeric = central_differences(net, X, Y, w)
    error = np.linalg.norm(flat(grads) - numeric) / np.linalg.norm(numeric)
    assert np.linalg.norm(numeric) > 1e-3
    assert error < 1e-6, error


def numpy_losses(net, X, Y):
    """Per-sample losses of a sigmoid-hidden, softmax-output cross-entropy net, in numpy."""
    h = X
    for w, b in net.get_weights()[:-1]:
        h = 1 / (1 + np.exp(-(h @ w + b)))
    w, b = net.get_weights()[-1]
    z = h @ w + b
    z -= z.max(axis=1, keepdims=True)
    return -(z[np.arange(len(Y)), Y] - np.log(np.exp(z).sum(axis=1)))


def test_weighted_loss_is_the_weighted_mean_of_the_sample_losses():
    rng = np.random.default_rng(9)
    X, y = rng.normal(size=(11, 4)), rng.integers(0, 3, 11)
    w = rng.uniform(0, 3, 11)
    net = build([4, 6, 5, 3], loss="cross_entropy")
    literal = np.sum(w * numpy_losses(net, X, y)) / np.sum(w)
    assert net.loss_and_gradients(X, y, w)[0] == pytest.approx(literal, rel=1e-13)
    scores = net.evaluate(X, y, sample_weight=w)
    assert scores["loss"] == pytest.approx(literal, rel=1e-13)
    hits = net.predict(X) == y
    assert scores["accuracy"] == pytest.approx(np.sum(w * hits) / np.sum(w), rel=1e-14)
    assert net.train_step(X, y, sample_weight=w) == pytest.approx(literal, rel=1e-13)


def test_integer_weights_equal_repeated_samples():
    rng = np.random.default_rng(10)
    X, y = rng.normal(size=(6, 4)), rng.integers(0, 3, 6)
    counts = np.array([2, 0, 1, 3, 1, 2])
    weighted, repeated = build([4, 6, 3], loss="cross_entropy"), build([4, 6, 3], loss="cross_entropy")
    Xr, yr = np.repeat(X, counts, axis=0), np.repeat(y, counts)
    lw, gw = weighted.loss_and_gradients(X, y, counts)
    lr, gr = repeated.loss_and_gradients(Xr, yr)
    assert lw == pytest.approx(lr, rel=1e-13)
    np.testing.assert_allclose(flat(gw), flat(gr), rtol=1e-12, atol=1e-15)
    for _ in range(3):
        assert weighted.train_step(X, y, sample_weight=counts) == pytest.approx(
            repeated.train_step(Xr, yr), rel=1e-12)
    np.testing.assert_allclose(flat(weighted.get_weights()), flat(repeated.get_weights()),
                               rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_unit_weights_equal_no_weights_exactly(dtype):
    rng = np.random.default_rng(11)
    X, y = rng.normal(size=(9, 3)), rng.integers(0, 4, 9)
    ones = np.ones(9)
    a = build([3, 8, 4], dtype=dtype, loss="cross_entropy", learning_rate=0.3)
    b = build([3, 8, 4], dtype=dtype, loss="cross_entropy", learning_rate=0.3)
    la, ga = a.loss_and_gradients(X, y)
    lb, gb = b.loss_and_gradients(X, y, ones)
    assert la == lb
    np.testing.assert_array_equal(flat(ga), flat(gb))
    for _ in range(3):
        assert a.train_step(X, y) == b.train_step(X, y, sample_weight=ones)
    np.testing.assert_array_equal(flat(a.get_weights()), flat(b.get_weights()))
    assert a.evaluate(X, y) == b.evaluate(X, y, ones)


def test_weighted_sgd_step_follows_the_weighted_gradients():
    rng = np.random.default_rng(12)
    X, Y = rng.normal(size=(5, 3)), rng.poisson(2.0, (5, 2)).astype(float)
    w = np.array([1.0, 0.0, 0.5, 2.0, 1.0])
    net = build([3, 4, 2], hidden="identity", output="exp", loss="poisson", learning_rate=0.05)
    before = net.get_weights()
    loss, grads = net.loss_and_gradients(X, Y, w)
    assert net.train_step(X, Y, sample_weight=w) == loss
    for (w0, b0), (gw, gb), (w1, b1) in zip(before, grads, net.get_weights()):
        np.testing.assert_allclose(w1, w0 - 0.05 * gw, rtol=1e-14, atol=1e-16)
        np.testing.assert_allclose(b1, b0 - 0.05 * gb, rtol=1e-14, atol=1e-16)


def test_weighted_listing1_loop_equals_train_step():
    rng = np.random.default_rng(13)
    X, y = rng.normal(size=(7, 3)), rng.integers(0, 4, 7)
    w = rng.uniform(0, 2, 7)
    a, b = build([3, 5, 4], learning_rate=0.3), build([3, 5, 4], learning_rate=0.3)
    a.forward(X)
    loss = a.compute_loss(y, sample_weight=w)
    a.backward()
    assert b.train_step(X, y, sample_weight=w) == loss
    np.testing.assert_array_equal(flat(a.get_weights()), flat(b.get_weights()))


@pytest.mark.parametrize("weighted", [False, True])
def test_poisson_loss_is_scikit_learns(weighted):
    from sklearn.neural_network._base import poisson_loss
    rng = np.random.default_rng(14)
    X, Y = rng.normal(size=(12, 3)), rng.poisson(1.5, (12, 2)).astype(float)
    w = rng.uniform(0, 2, 12) if weighted else None
    net = build([3, 5, 2], hidden="identity", output="exp", loss="poisson")
    larger_weights(net, rng)
    expected = poisson_loss(Y, net.predict_proba(X), sample_weight=w)
    assert net.evaluate(X, Y, w)["loss"] == pytest.approx(expected, rel=1e-13)
    assert net.loss_and_gradients(X, Y, w)[0] == pytest.approx(expected, rel=1e-13)


@pytest.mark.parametrize("hidden,sklearn_name", [("identity", "identity"), ("tanh", "tanh"),
                                                  ("relu", "relu"), ("sigmoid", "logistic")])
@pytest.mark.parametrize("weighted", [False, True])
def test_poisson_loss_and_gradients_equal_scikit_learns_backprop(hidden, sklearn_name, weighted):
    """MLPRegressor(loss='poisson', alpha=0)._backprop at the same weights: loss and gradients."""
    from sklearn.neural_network import MLPRegressor
    rng = np.random.default_rng(15)
    sizes = [4, 6, 5, 2]
    X, Y = rng.normal(size=(10, 4)), rng.poisson(1.5, (10, 2)).astype(float)
    w = rng.uniform(0, 2, 10) if weighted else None
    net = build(sizes, hidden=hidden, output="exp", loss="poisson")
    larger_weights(net, rng)
    reference = MLPRegressor(hidden_layer_sizes=sizes[1:-1], activation=sklearn_name,
                             loss="poisson", alpha=0.0)
    reference.coefs_ = [w_.copy() for w_, _ in net.get_weights()]
    reference.intercepts_ = [b_.copy() for _, b_ in net.get_weights()]
    reference.n_layers_, reference.out_activation_ = len(sizes), "exp"
    n = len(sizes) - 1
    loss, coef_grads, intercept_grads = reference._backprop(
        X, Y, w, [X] + [None] * n, [None] * n, [None] * n, [None] * n)
    got_loss, got = net.loss_and_gradients(X, Y, w)
    assert got_loss == pytest.approx(loss, rel=1e-13)
    for (gw, gb), rw, rb in zip(got, coef_grads, intercept_grads):
        np.testing.assert_allclose(gw, rw, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(gb, rb, rtol=1e-12, atol=1e-14)


def test_one_sgd_step_by_hand():
    # 2 inputs -> 2 sigmoid -> 1 identity, squared loss, one sample, lr 0.5.
    net = Network(seed=0, dtype="float64", loss="mse", learning_rate=0.5)
    net.add_layer("input", 2).add_layer("hidden", 2, activation="sigmoid")
    net.add_layer("output", 1, activation="identity")
    net.initialize()
    w1 = [[0.1, -0.2], [0.3, 0.4]]            # w1[i][j]: input i -> hidden j
    b1 = [0.05, -0.05]
    w2 = [[0.7], [-0.6]]
    b2 = [0.2]
    net.set_weights([(np.array(w1), np.array(b1)), (np.array(w2), np.array(b2))])
    x, y = [1.0, 2.0], 0.5

    sig = lambda z: 1 / (1 + math.exp(-z))
    h = [sig(x[0] * w1[0][j] + x[1] * w1[1][j] + b1[j]) for j in range(2)]
    out = h[0] * w2[0][0] + h[1] * w2[1][0] + b2[0]
    loss = 0.5 * (out - y) ** 2
    d_out = out - y
    d_h = [d_out * w2[j][0] * h[j] * (1 - h[j]) for j in range(2)]
    new_w2 = [[w2[j][0] - 0.5 * h[j] * d_out] for j in range(2)]
    new_b2 = [b2[0] - 0.5 * d_out]
    new_w1 = [[w1[i][j] - 0.5 * x[i] * d_h[j] for j in range(2)] for i in range(2)]
    new_b1 = [b1[j] - 0.5 * d_h[j] for j in range(2)]

    assert net.forward(np.array([x]))[0, 0] == pytest.approx(out, rel=1e-14)
    assert net.compute_loss(np.array([[y]])) == pytest.approx(loss, rel=1e-14)
    net.backward()
    (W1, B1), (W2, B2) = net.get_weights()
    np.testing.assert_allclose(W1, new_w1, rtol=1e-14)
    np.testing.assert_allclose(B1, new_b1, rtol=1e-14)
    np.testing.assert_allclose(W2, new_w2, rtol=1e-14)
    np.testing.assert_allclose(B2, new_b2, rtol=1e-14)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_listing1_loop_equals_train_step(dtype):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(9, 3)), rng.integers(0, 4, 9)
    a = build([3, 11, 6, 4], dtype=dtype, learning_rate=0.3)
    b = build([3, 11, 6, 4], dtype=dtype, learning_rate=0.3)
    for _ in range(3):
        a.forward(X)
        loss_a = a.compute_loss(y)
        a.backward()
        assert b.train_step(X, y) == loss_a
    for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        np.testing.assert_array_equal(ba, bb)


def test_labels_and_one_hot_rows_agree():
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(8, 5)), rng.integers(0, 3, 8)
    a, b = build([5, 4, 3], loss="cross_entropy"), build([5, 4, 3], loss="cross_entropy")
    assert a.train_step(X, y) == pytest.approx(b.train_step(X, one_hot(y, 3)), rel=1e-14)
    np.testing.assert_allclose(a.get_weights()[0][0], b.get_weights()[0][0], rtol=1e-14)


def test_momentum_and_weight_decay_follow_their_rules():
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(5, 3)), rng.integers(0, 2, 5)
    net = build([3, 4, 2], learning_rate=0.2, momentum=0.5, weight_decay=0.01)
    plain = build([3, 4, 2])
    weights = net.get_weights()
    velocity = [(np.zeros_like(w), np.zeros_like(b)) for w, b in weights]
    for _ in range(3):
        plain.set_weights(weights)
        grads = plain.gradients(X, y)
        net.train_step(X, y)
        for i, ((w, b), (gw, gb)) in enumerate(zip(weights, grads)):
            vw = 0.5 * velocity[i][0] - 0.2 * (gw + 0.01 * w)
            vb = 0.5 * velocity[i][1] - 0.2 * gb
            velocity[i] = (vw, vb)
            weights[i] = (w + vw, b + vb)
    for (w, b), (nw, nb) in zip(weights, net.get_weights()):
        np.testing.assert_allclose(nw, w, rtol=1e-12)
        np.testing.assert_allclose(nb, b, rtol=1e-12)


def test_initialization_depends_on_seed_and_neuron_only():
    a, b = build([3, 5, 4]), build([3, 5, 4])
    for (wa, ba), (wb, bb) in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_array_equal(wa, wb)
        assert not ba.any()
    # Neuron j's incoming weights come from its own stream: a wider layer keeps the
    # first neurons' weights, and each stays within the Glorot bound of its layer.
    wide = build([3, 9, 4])
    narrow_w1 = a.get_weights()[0][0]
    wide_w1 = wide.get_weights()[0][0]
    assert np.abs(narrow_w1).max() <= math.sqrt(6 / 8)
    assert np.abs(wide_w1).max() <= math.sqrt(6 / 12)
    np.testing.assert_allclose(wide_w1[:, :5] / math.sqrt(6 / 12), narrow_w1 / math.sqrt(6 / 8),
                               rtol=1e-12)
    other = Network(seed=4, dtype="float64").add_layer("input", 3).add_layer("hidden", 5)
    other.add_layer("output", 4).initialize()
    assert not np.allclose(other.get_weights()[0][0], narrow_w1)


def test_float32_tracks_float64():
    rng = np.random.default_rng(5)
    X, y = rng.normal(size=(16, 6)), rng.integers(0, 3, 16)
    a, b = build([6, 10, 3], dtype="float32"), build([6, 10, 3], dtype="float64")
    for _ in range(5):
        la, lb = a.train_step(X, y), b.train_step(X, y)
    assert la == pytest.approx(lb, rel=1e-5)
    np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-5)


def test_xor_is_learnt():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=float)
    y = np.array([0, 1, 1, 0])
    net = Network(seed=1, dtype="float64", loss="cross_entropy", learning_rate=0.5, momentum=0.9)
    net.add_layer("input", 2).add_layer("hidden", 8, activation="sigmoid").add_layer("output", 2)
    net.initialize()
    history = net.fit(X, y, max_epochs=600, batch_size=4, n_iter_no_change=None)
    np.testing.assert_array_equal(net.predict(X), y)
    assert history["loss"][-1] < 0.05 < history["loss"][0]


def test_digits_are_learnt_to_97_percent():
    """The paper's recipe: sigmoid, SGD at 2.0 with step decay, raw 0-16 pixel values."""
    X, y = load_digits(dtype="float32")
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_fraction=0.25, seed=0)
    net = Network(seed=0, dtype="float32", loss="cross_entropy", learning_rate=2.0,
                  weight_decay=1e-4)
    net.add_layer("input", 64).add_layer("hidden", 256, activation="sigmoid").add_layer("output", 10)
    net.initialize()
    for epochs, rate in [(30, 2.0), (15, 0.4), (15, 0.08)]:
        history = net.fit(X_train, y_train, max_epochs=epochs, batch_size=16, learning_rate=rate,
                          n_iter_no_change=None)
    assert net.epochs_trained == 60
    scores = net.evaluate(X_test, y_test)
    assert scores["accuracy"] >= 0.97, scores
    assert scores["accuracy"] == np.mean(net.predict(X_test) == y_test)
    assert history["loss"][-1] < 0.05


def test_fit_is_reproducible_and_reports_validation():
    rng = np.random.default_rng(6)
    X, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    runs = []
    for _ in range(2):
        net = build([4, 6, 3], loss="cross_entropy", learning_rate=0.1)
        runs.append(net.fit(X, y, max_epochs=3, batch_size=7, validation=(X[:10], y[:10])))
    for run in runs:
        del run["seconds"]
    assert runs[0] == runs[1]
    assert len(runs[0]["val_accuracy"]) == 3 and 0 <= runs[0]["val_accuracy"][-1] <= 1
    assert runs[0]["val_loss"][-1] == net.evaluate(X[:10], y[:10])["loss"]


def test_predict_handles_more_samples_than_one_chunk():
    rng = np.random.default_rng(8)
    net = build([3, 5, 4])
    X = rng.normal(size=(2500, 3))
    proba = net.predict_proba(X)
    (w1, b1), (w2, b2) = net.get_weights()
    h = 1 / (1 + np.exp(-(X @ w1 + b1)))
    z = h @ w2 + b2
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(proba, expected, rtol=1e-12)
    np.testing.assert_array_equal(net.predict(X), np.argmax(expected, axis=1))


def test_repr_shows_the_topology():
    net = Network(seed=0, dtype="float32", loss="mse", learning_rate=0.1)
    net.add_layer("input", 3).add_layer("hidden", 256).add_layer("hidden", 512)
    net.add_layer("output", 128)
    assert "3 -> 256 relu -> 512 relu -> 128 softmax" in repr(net)
    assert "not initialized" in repr(net)
    assert "197,376 weights" in repr(net.initialize())


@pytest.mark.parametrize("kwargs,name", [
    ({"dtype": "int32"}, "dtype"), ({"loss": "hinge"}, "loss"),
    ({"learning_rate": 0}, "learning_rate"), ({"learning_rate": float("nan")}, "learning_rate"),
    ({"momentum": 1.0}, "momentum"), ({"weight_decay": -1}, "weight_decay"),
    ({"seed": -1}, "seed"),
])
def test_invalid_parameters_are_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Network(**kwargs)


def test_invalid_architectures_are_rejected():
    net = Network()
    with pytest.raises(ValueError, match="first layer"):
        net.add_layer("hidden", 3)
    net.add_layer("input", 3)
    with pytest.raises(ValueError, match="size"):
        net.add_layer("hidden", 0)
    with pytest.raises(ValueError, match="activation"):
        net.add_layer("hidden", 3, activation="softmax")
    with pytest.raises(ValueError, match="kind"):
        net.add_layer("conv", 3)
    with pytest.raises(ValueError, match="output"):
        net.initialize()
    net.add_layer("output", 2, activation="identity")
    with pytest.raises(ValueError, match="follow"):
        net.add_layer("hidden", 3)
    for loss, output in [("cross_entropy", "identity"), ("cross_entropy", "exp"),
                         ("poisson", "softmax"), ("poisson", "identity"), ("mse", "exp")]:
        net = Network(loss=loss).add_layer("input", 2).add_layer("output", 2, activation=output)
        with pytest.raises(ValueError, match=f"loss '{loss}' needs .*, got '{output}'"):
            net.initialize()
    with pytest.raises(ValueError, match="activation"):
        Network().add_layer("input", 2).add_layer("hidden", 3, activation="exp")


def test_invalid_data_is_rejected():
    net = build([3, 4, 2])
    with pytest.raises(ValueError, match=r"X must have shape \[B, 3\]"):
        net.forward(np.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\)"):
        net.train_step(np.zeros((2, 3)), [0, 2])
    for labels, shown in [(np.array([0, -1], np.int8), r"\[-1, 0\]"),
                          (np.array([0, 2**63], np.uint64), r"\[0, 9223372036854775808\]"),
                          (np.array([5, 0, 1, 0])[::2], r"\[1, 5\]")]:
        with pytest.raises(ValueError, match=r"class indices must lie in \[0, 2\), got " + shown):
            net.train_step(np.zeros((2, 3)), labels)
    with pytest.raises(ValueError, match="Y must have 2 rows"):
        net.train_step(np.zeros((2, 3)), [0, 1, 1])
    with pytest.raises(ValueError, match="Y must be class indices"):
        net.train_step(np.zeros((2, 3)), np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="forward"):
        build([3, 4, 2]).compute_loss([0])
    with pytest.raises(RuntimeError, match="compute_loss"):
        net.forward(np.zeros((1, 3)))
        net.backward()
    with pytest.raises(RuntimeError, match="initialize"):
        Network().add_layer("input", 2).add_layer("output", 2).forward(np.zeros((1, 2)))
    with pytest.raises(ValueError, match="set_weights"):
        net.set_weights([(np.zeros((3, 4)), np.zeros(4))])
    X, y = np.zeros((3, 3)), np.array([0, 1, 1])
    for weights, message in [([1.0, -1.0, 1.0], ">= 0"), ([1.0, np.nan, 1.0], "finite"),
                             ([0, 0, 0], "at least one weight must be > 0"),
                             ([1.0, 1.0], r"sample_weight must be numbers \[3\]"),
                             (["a", "b", "c"], "numbers")]:
        for call in (net.train_step, net.loss_and_gradients, net.evaluate):
            with pytest.raises(ValueError, match=message):
                call(X, y, sample_weight=weights)
    with pytest.raises(ValueError, match="finite"):      # inf once float32
        build([3, 4, 2], dtype="float32").train_step(X, y, sample_weight=[1e300, 1.0, 1.0])
    poisson = build([3, 4, 2], output="exp", loss="poisson")
    with pytest.raises(ValueError, match="Poisson loss needs targets >= 0"):
        poisson.train_step(X, [[1.0, 2.0], [0.0, -1.0], [3.0, 0.0]])


def test_memory_mapped_inputs_train_as_arrays_do(tmp_path):
    rng = np.random.default_rng(4)
    X, y = rng.normal(size=(30, 4)).astype(np.float32), rng.integers(0, 3, 30)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    mapped, loaded = build([4, 6, 3]), build([4, 6, 3])
    a = mapped.fit(np.load(tmp_path / "X.npy", mmap_mode="r"),
                   np.load(tmp_path / "y.npy", mmap_mode="r"), max_epochs=2, batch_size=7)
    b = loaded.fit(X, y, max_epochs=2, batch_size=7)
    np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-12)
    X[11, 2] = np.inf
    np.save(tmp_path / "bad.npy", X)
    with pytest.raises(ValueError, match="NaN or infinite"):
        mapped.fit(np.load(tmp_path / "bad.npy", mmap_mode="r"), y, max_epochs=1, batch_size=7)
