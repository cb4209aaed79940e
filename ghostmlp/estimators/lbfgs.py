"""solver='lbfgs': full-batch L-BFGS-B (scipy.optimize.minimize) on a Network's loss and gradients."""
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ghostmlp.estimators.rows import block, blocks


class Objective:
    """f(theta) = L + 0.5 alpha ||W||^2 / S and its gradient, L = sum_i w_i loss_i / S.

    S = sum_i w_i (n without sample weights). theta packs the weights as scikit-learn
    packs them: every W[fan_in, fan_out] flattened, layer by layer, then every b. L and
    its gradients are summed over blocks of rows of X (a sparse X is densified a block at
    a time). On a grid every rank computes the same values (Network.loss_and_gradients
    is collective).
    """

    def __init__(self, net, X, Y, alpha, sample_weight=None):
        self.net, self.X, self.Y, self.alpha = net, X, Y, alpha
        self.sample_weight = sample_weight
        self.total = len(Y) if sample_weight is None else float(np.sum(sample_weight))
        self.shapes = [w.shape for w, _ in net.get_weights()]

    def pack(self, pairs):
        return np.concatenate([w.ravel() for w, _ in pairs] + [b.ravel() for _, b in pairs]
                              ).astype(np.float64)

    def unpack(self, theta):
        """[(W, b)] of theta (views)."""
        ends = np.cumsum([a * b for a, b in self.shapes] + [b for _, b in self.shapes])
        parts = np.split(theta, ends[:-1])
        layers = len(self.shapes)
        return [(parts[l].reshape(self.shapes[l]), parts[layers + l]) for l in range(layers)]

    def data_loss(self, theta):
        """(L, [(dL/dW, dL/db)]) of the network at theta, without the penalty."""
        net, w = self.net, self.sample_weight
        net.set_weights(self.unpack(theta))
        loss, grads = 0.0, None
        for start, stop in blocks(len(self.Y)):
            weight = stop - start if w is None else float(np.sum(w[start:stop]))
            if weight == 0:
                continue
            part_loss, part = net.loss_and_gradients(
                block(self.X, start, stop, net.dtype), self.Y[start:stop],
                None if w is None else w[start:stop])
            share = weight / self.total
            loss += share * part_loss
            grads = ([(share * gw, share * gb) for gw, gb in part] if grads is None else
                     [(gw0 + share * gw, gb0 + share * gb)
                      for (gw0, gb0), (gw, gb) in zip(grads, part)])
        return loss, grads

    def penalty(self, theta):
        """0.5 alpha ||W||^2 / S over every W of theta (biases are not penalised)."""
        return 0.5 * self.alpha * sum(float(np.dot(w.ravel(), w.ravel()))
                                      for w, _ in self.unpack(theta)) / self.total

    def __call__(self, theta):
        loss, grads = self.data_loss(theta)
        grads = [(gw + (self.alpha / self.total) * w, gb)
                 for (gw, gb), (w, _) in zip(grads, self.unpack(theta))]
        return loss + self.penalty(theta), self.pack(grads)


def minimize(objective, max_iter, max_fun, tol, verbose=False):
    """Run L-BFGS-B from the network's weights; leaves the optimum in the network.

    Options as scikit-learn's: maxiter=max_iter, maxfun=max_fun, gtol=tol; a
    ConvergenceWarning when it stops for another reason than convergence. Returns
    (iterations, theta at the optimum).
    """
    def report(intermediate_result):
        print(f"Iteration {report.count}, loss = {intermediate_result.fun:.8f}")
        report.count += 1
    report.count = 1

    start = objective.pack(objective.net.get_weights())
    result = scipy.optimize.minimize(objective, start, method="L-BFGS-B", jac=True,
                                     callback=report if verbose else None,
                                     options={"maxiter": max_iter, "maxfun": max_fun,
                                              "gtol": tol})
    if result.status != 0:
        message = result.message.decode() if isinstance(result.message, bytes) else result.message
        warnings.warn(f"lbfgs failed to converge after {result.nit} iteration(s) (status="
                      f"{result.status}): {message}. Increase the number of iterations "
                      "(max_iter) or scale the data.", ConvergenceWarning)
    objective.net.set_weights(objective.unpack(result.x))
    return min(result.nit, max_iter), result.x
