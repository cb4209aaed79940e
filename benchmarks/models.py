"""The paper's Table I models, their scaled variants, and how the benchmarks build and feed them."""
import numpy as np

import ghostmlp

MODELS = {  # neurons per layer, input first (the paper's Table I)
    "S": [3, 64, 128, 256, 64],
    "M": [2048, 4096, 4096, 4096, 2048],
    "L": [2048, 32768, 8192, 4096, 2048],
}
LEARNING_RATE = 0.01


def scaled_sizes(name, scale=1.0):
    """MODELS[name] with every hidden layer multiplied by `scale` (rounded, at least 1).

    The input and output layers are kept, so the data and the loss stay the same.
    """
    if not scale > 0:
        raise ValueError(f"scale must be > 0, got {scale!r}")
    sizes = MODELS[name]
    return [sizes[0]] + [max(1, round(size * scale)) for size in sizes[1:-1]] + [sizes[-1]]


def build_network(sizes, dtype="float32", seed=0, **network_options):
    """An initialized ghostmlp.Network: sigmoid hidden layers, softmax output, loss mse, SGD lr 0.01.

    network_options go to ghostmlp.Network (comm, connectivity, blocks, ...) and may
    override loss and learning_rate.
    """
    options = {"loss": "mse", "learning_rate": LEARNING_RATE, **network_options}
    net = ghostmlp.Network(seed=seed, dtype=dtype, **options)
    net.add_layer("input", sizes[0])
    for size in sizes[1:-1]:
        net.add_layer("hidden", size, "sigmoid")
    net.add_layer("output", sizes[-1], "softmax")
    return net.initialize()


def synthetic_data(sizes, batch, dtype="float32", seed=0):
    """Dummy data as the paper's: X[batch, n_in] uniform in [0, 1), y[batch] int64 class indices."""
    rng = np.random.default_rng(seed)
    X = rng.random((batch, sizes[0]), dtype=np.dtype(dtype).type)
    y = rng.integers(0, sizes[-1], batch, dtype=np.int64)
    return X, y
