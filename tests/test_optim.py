"""Optimizers: 5-step trajectories against torch.optim (float64), the API, configs, resume."""
import numpy as np
import pytest

import ghostmlp
from ghostmlp import Network
from ghostmlp.optim import SGD, Adam, AdamW, from_config

SIZES = [4, 6, 5, 3]
OPTIMIZERS = {
    "sgd": lambda: SGD(0.2),
    "sgd-wd": lambda: SGD(0.2, weight_decay=0.05),
    "momentum": lambda: SGD(0.1, momentum=0.9, weight_decay=0.05),
    "nesterov": lambda: SGD(0.1, momentum=0.8, nesterov=True, weight_decay=0.05),
    "adam": lambda: Adam(0.01),
    "adam-l2": lambda: Adam(0.01, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05),
    "adamw": lambda: AdamW(0.01, weight_decay=0.1),
}
optimizers = pytest.mark.parametrize("name", list(OPTIMIZERS))


def build(optimizer, dtype="float64", **options):
    net = Network(seed=4, dtype=dtype, loss="cross_entropy", optimizer=optimizer, **options)
    net.add_layer("input", SIZES[0]).add_layer("hidden", SIZES[1], activation="tanh")
    net.add_layer("hidden", SIZES[2], activation="relu").add_layer("output", SIZES[3])
    return net.initialize()


def batches(steps=5, batch=7):
    rng = np.random.default_rng(11)
    return [(rng.normal(size=(batch, SIZES[0])), rng.integers(0, SIZES[-1], batch))
            for _ in range(steps)]


def torch_optimizer(torch, optimizer, weights, biases):
    """The torch.optim twin of `optimizer`: weights decayed, biases in a group without decay."""
    groups = [{"params": weights}, {"params": biases, "weight_decay": 0.0}]
    if isinstance(optimizer, SGD):
        return torch.optim.SGD(groups, lr=optimizer.lr, momentum=optimizer.momentum,
                               nesterov=optimizer.nesterov, weight_decay=optimizer.weight_decay)
    kind = torch.optim.AdamW if isinstance(optimizer, AdamW) else torch.optim.Adam
    return kind(groups, lr=optimizer.lr, betas=optimizer.betas, eps=optimizer.eps,
                weight_decay=optimizer.weight_decay)


@optimizers
def test_trajectory_matches_torch(name):
    torch = pytest.importorskip("torch")
    net = build(OPTIMIZERS[name]())
    layers = [torch.nn.Linear(a, b, dtype=torch.float64) for a, b in zip(SIZES[:-1], SIZES[1:])]
    with torch.no_grad():
        for layer, (w, b) in zip(layers, net.get_weights()):
            layer.weight.copy_(torch.from_numpy(w.T))
            layer.bias.copy_(torch.from_numpy(b))
    model = torch.nn.Sequential(layers[0], torch.nn.Tanh(), layers[1], torch.nn.ReLU(), layers[2])
    opt = torch_optimizer(torch, net.optimizer, [layer.weight for layer in layers],
                          [layer.bias for layer in layers])
    for step, (X, y) in enumerate(batches(), 1):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(torch.from_numpy(X)), torch.from_numpy(y))
        loss.backward()
        opt.step()
        assert net.train_step(X, y) == pytest.approx(loss.item(), rel=1e-12)
        for layer, (w, b) in zip(layers, net.get_weights()):
            np.testing.assert_allclose(w, layer.weight.detach().numpy().T, rtol=1e-10,
                                       atol=1e-13, err_msg=f"{name}: W after step {step}")
            np.testing.assert_allclose(b, layer.bias.detach().numpy(), rtol=1e-10, atol=1e-13,
                                       err_msg=f"{name}: b after step {step}")


@optimizers
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_optimizers_learn(name, dtype):
    net = build(OPTIMIZERS[name](), dtype)
    X = batches(1, 60)[0][0]
    y = np.argmax(X[:, :3], axis=1)                     # a rule the network can learn
    first = net.evaluate(X, y)["loss"]
    net.fit(X, y, max_epochs=30, batch_size=10)
    assert net.evaluate(X, y)["loss"] < 0.8 * first


@optimizers
def test_resume_equals_an_uninterrupted_run(tmp_path, name):
    (X, y), = batches(1, 45)
    straight = build(OPTIMIZERS[name]())
    straight.fit(X, y, max_epochs=4, batch_size=8)
    first = build(OPTIMIZERS[name]())
    first.fit(X, y, max_epochs=2, batch_size=8)
    ghostmlp.save(first, tmp_path / "half.gmlp")
    resumed = ghostmlp.load(tmp_path / "half.gmlp")
    assert resumed.optimizer == straight.optimizer and resumed.steps_trained == 12
    resumed.fit(X, y, max_epochs=2, batch_size=8)
    for (w, b), (rw, rb) in zip(straight.get_weights(), resumed.get_weights()):
        np.testing.assert_allclose(rw, w, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(rb, b, rtol=1e-12, atol=1e-15)


def test_a_rate_given_to_fit_applies_to_that_call_only():
    net = build(SGD(0.2))
    (X, y), = batches(1, 20)
    twin = build(SGD(0.05))
    net.fit(X, y, max_epochs=1, batch_size=5, learning_rate=0.05)
    twin.fit(X, y, max_epochs=1, batch_size=5)
    assert net.optimizer.lr == 0.2 and net.config()["optimizer"]["lr"] == 0.2
    for (w, _), (tw, _) in zip(net.get_weights(), twin.get_weights()):
        np.testing.assert_array_equal(w, tw)


def test_shorthand_is_sgd():
    net = Network(learning_rate=0.3, momentum=0.5, weight_decay=1e-3)
    assert net.optimizer == SGD(0.3, momentum=0.5, weight_decay=1e-3)
    assert Network(momentum=0.5).optimizer == SGD(0.1, momentum=0.5)


def test_the_default_is_adam():
    assert Network().optimizer == Adam(1e-3)


@optimizers
def test_config_round_trip(name):
    optimizer = OPTIMIZERS[name]()
    assert from_config(optimizer.config()) == optimizer
    assert repr(optimizer).startswith(type(optimizer).__name__ + "(")


@pytest.mark.parametrize("make,name", [
    (lambda: SGD(0), "lr"), (lambda: SGD(0.1, momentum=1.0), "momentum"),
    (lambda: SGD(0.1, nesterov=True), "nesterov"), (lambda: SGD(0.1, weight_decay=-1), "weight_decay"),
    (lambda: Adam(betas=(0.9, 1.0)), r"betas\[1\]"), (lambda: Adam(betas=0.9), "betas"),
    (lambda: Adam(eps=0), "eps"), (lambda: AdamW(lr=float("nan")), "lr"),
    (lambda: Network(optimizer=Adam(), learning_rate=0.1), "learning_rate"),
    (lambda: Network(optimizer="adam"), "optimizer"),
    (lambda: from_config({"name": "rmsprop"}), "optimizer name"),
    (lambda: from_config({"name": "adam", "momentum": 0.9}), "adam"),
])
def test_invalid_hyperparameters_are_named(make, name):
    with pytest.raises(ValueError, match=name):
        make()
