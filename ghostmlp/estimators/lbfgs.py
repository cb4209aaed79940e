"""solver='lbfgs': full-batch L-BFGS-B (scipy.optimize.minimize) on a Network's loss and gradients."""
import warnings

import numpy as np
import scipy.optimize
from sklearn.exceptions import ConvergenceWarning

from ghostmlp.estimators.rows import block, blocks


class Objective:
    """f(theta) = mean loss of the network over (X, Y) + 0.5 alpha ||W||^2 / n, and its gradient.

    theta packs the weights as scikit-learn packs them: every W[fan_in, fan_out]
    flattened, layer by layer, then every b. The mean loss and its gradients are summed
    over blocks of rows of X (a sparse X is densified a block at a time). On a grid
    every rank computes the same values (the network's gradients are collective).
    """

    def __init__(self, net, X, Y, alpha):
        self.net, self.X, self.Y, self.alpha = net, X, Y, alpha
        self.shapes = [w.shape for w, _ in net.get_weights()]
        self.evaluations = 0

    def pack(self, pairs):
        return np.concatenate([w.ravel() for w, _ in pairs] + [b.ravel() for _, b in pairs]
                              ).astype(np.float64)

    def unpack(self, theta):
        """[(W, b)] of theta (views)."""
        ws, start = [], 0
        for shape in self.shapes:
            ws.append(theta[start:start + shape[0] * shape[1]].reshape(shape))
            start += shape[0] * shape[1]
        bs = []
        for shape in self.shapes:
            bs.append(theta[start:start + shape[1]])
            start += shape[1]
        return list(zip(ws, bs))

    def data_loss(self, theta):
        """(mean loss, [(dW, db)]) of the network at theta, without the penalty."""
        net = self.net
        net.set_weights(self.unpack(theta))
        n = len(self.Y)
        loss, grads = 0.0, None
        for start, stop in blocks(n):
            xb = block(self.X, start, stop, net.dtype)
            share = (stop - start) / n
            loss += share * net.evaluate(xb, self.Y[start:stop])["loss"]
            part = net.gradients(xb, self.Y[start:stop])
            grads = ([(share * gw, share * gb) for gw, gb in part] if grads is None else
                     [(w + share * gw, b + share * gb) for (w, b), (gw, gb) in zip(grads, part)])
        return loss, grads

    def penalty(self, theta):
        """0.5 alpha ||W||^2 / n over every W of theta (biases are not penalised)."""
        return 0.5 * self.alpha * sum(float(np.dot(w.ravel(), w.ravel()))
                                      for w, _ in self.unpack(theta)) / len(self.Y)

    def __call__(self, theta):
        self.evaluations += 1
        loss, grads = self.data_loss(theta)
        n = len(self.Y)
        grads = [(gw + (self.alpha / n) * w, gb)
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
