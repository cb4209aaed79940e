"""The same training step in plain numpy and in PyTorch (CPU), to time beside ghostmlp's."""
import re

import numpy as np

from ghostmlp.bench import LEARNING_RATE


def numpy_step(X, T, params, lr):
    """One step as a user would write it in numpy; X[B, n] row-major, T one-hot, params [[W, b]].

    Loss as ghostmlp's "mse": batch mean of 1/2 sum_k (y'_k - t_k)^2; its gradient goes
    through the softmax Jacobian, then back through the sigmoid layers; plain SGD update.
    """
    activations = [X]
    a = X
    for W, b in params[:-1]:
        a = 1.0 / (1.0 + np.exp(-(a @ W + b)))
        activations.append(a)
    W, b = params[-1]
    z = a @ W + b
    e = np.exp(z - z.max(axis=1, keepdims=True))
    y = e / e.sum(axis=1, keepdims=True)
    batch = len(X)
    diff = y - T
    loss = 0.5 * float(np.sum(diff * diff)) / batch
    g = diff / batch                                           # dL/dy'
    delta = y * (g - np.sum(g * y, axis=1, keepdims=True))     # dL/dz through the softmax
    for layer in range(len(params) - 1, -1, -1):
        W, b = params[layer]
        a = activations[layer]
        grad_W = a.T @ delta
        grad_b = delta.sum(axis=0)
        if layer:
            delta = (delta @ W.T) * a * (1.0 - a)              # sigmoid' = a (1 - a)
        W -= lr * grad_W
        b -= lr * grad_b
    return loss


def import_torch():
    """(torch, None) or (None, why it is not available)."""
    try:
        import torch
        return torch, None
    except Exception as error:      # ImportError, or a broken install (OSError, ...)
        return None, f"{type(error).__name__}: {error}"


def torch_summary(torch):
    """One line on PyTorch's CPU math: BLAS, MKL, oneDNN, OpenMP, CPU capability, threads."""
    text = torch.__config__.show()

    def find(pattern):
        match = re.search(pattern, text)
        return match.group(1) if match else None

    blas_info = find(r"BLAS_INFO=(\w+)") or "?"
    parts = [f"BLAS_INFO={blas_info}"]
    mkl = find(r"Math Kernel Library Version ([\d.]+)")
    if mkl:
        parts.append(f"Intel oneAPI MKL {mkl}")
    onednn = find(r"MKL-DNN (v[\d.]+)")
    if onednn:
        parts.append(f"oneDNN {onednn} (mkldnn "
                     f"{'available' if torch.backends.mkldnn.is_available() else 'unavailable'})")
    openmp = find(r"OpenMP (\d+)")
    if openmp:
        parts.append(f"OpenMP {openmp}")
    capability = find(r"CPU capability usage: (\w+)")
    if capability:
        parts.append(f"CPU capability {capability}")
    parts.append(f"{torch.get_num_threads()} intra-op thread(s)")
    return f"torch {torch.__version__}: " + ", ".join(parts)


class TorchModel:
    """nn.Linear + nn.Sigmoid layers, nn.Softmax(dim=1) output, nn.MSELoss, optim.SGD(lr=0.01)."""

    def __init__(self, torch, weights, dtype):
        nn = torch.nn
        self.torch = torch
        self.dtype = getattr(torch, dtype)
        layers = []
        for index, (w, _) in enumerate(weights):
            layers.append(nn.Linear(w.shape[0], w.shape[1], dtype=self.dtype))
            layers.append(nn.Sigmoid() if index < len(weights) - 1 else nn.Softmax(dim=1))
        self.model = nn.Sequential(*layers)
        self.linears = [m for m in self.model if isinstance(m, nn.Linear)]
        self.loss_fn = nn.MSELoss()
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=LEARNING_RATE)
        self.set_weights(weights)

    def set_weights(self, weights):
        with self.torch.no_grad():
            for linear, (w, b) in zip(self.linears, weights):
                linear.weight.copy_(self.torch.from_numpy(w.T))   # nn.Linear holds W^T
                linear.bias.copy_(self.torch.from_numpy(b))

    def tensors(self, X, T):
        return self.torch.from_numpy(X), self.torch.from_numpy(T)

    def step(self, x, t):
        self.optimizer.zero_grad()
        loss = self.loss_fn(self.model(x), t)
        loss.backward()
        self.optimizer.step()
        return loss
