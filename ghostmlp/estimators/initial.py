"""What a fit draws from random_state, in scikit-learn's order, identical on every rank."""
import math

import numpy as np
from sklearn.model_selection import train_test_split

from ghostmlp.broadcast import read_on_root

SEED_BOUND = 2**31 - 1      # the Network's seed (its epoch orders) is drawn from [0, SEED_BOUND)


def glorot_uniform(layer_units, activation, random_state, dtype):
    """[(W[fan_in, fan_out], b[fan_out])] as MLPClassifier draws them from random_state.

    Layer by layer, W then b from U(-r, r), r = sqrt(f / (fan_in + fan_out)), f = 2
    for activation='logistic' and 6 otherwise; drawn in float64, then cast to dtype.
    """
    factor = 2.0 if activation == "logistic" else 6.0
    pairs = []
    for fan_in, fan_out in zip(layer_units[:-1], layer_units[1:]):
        bound = math.sqrt(factor / (fan_in + fan_out))
        w = random_state.uniform(-bound, bound, (fan_in, fan_out)).astype(dtype, copy=False)
        b = random_state.uniform(-bound, bound, fan_out).astype(dtype, copy=False)
        pairs.append((w, b))
    return pairs


def draw(random_state, comm, layer_units=None, activation=None, dtype=None, split=None):
    """(weights, (train, validation), seed) drawn from random_state in scikit-learn's order.

    weights: glorot_uniform(layer_units, ...) (None without layer_units); with
    split=(n_samples, fraction, labels or None), the indices of the training and the
    held-out samples in the order train_test_split(..., stratify=labels) gives them
    (else None); seed: the Network's seed, drawn last. random_state=None or a RandomState differs between
    processes: with comm, rank 0 draws and broadcasts (collective).
    """
    def draws():
        arrays = []
        if layer_units is not None:
            arrays += [a for pair in glorot_uniform(layer_units, activation, random_state, dtype)
                       for a in pair]
        parts = (np.empty(0, dtype=np.int64),) * 2
        if split is not None:
            n_samples, fraction, labels = split
            parts = train_test_split(np.arange(n_samples), test_size=fraction,
                                     random_state=random_state, stratify=labels)
        seed = np.int64(random_state.randint(SEED_BOUND))
        return tuple(arrays) + tuple(parts) + (np.asarray(seed),)

    arrays = read_on_root(draws, comm)
    weights = ([(arrays[i], arrays[i + 1]) for i in range(0, len(arrays) - 3, 2)]
               if layer_units is not None else None)
    return weights, (tuple(arrays[-3:-1]) if split is not None else None), int(arrays[-1])
