"""Input normalisation fitted on the training split: the Normaliser saved with a model."""
import numpy as np

from ghostmlp.validate import choice


class Normaliser:
    """Z[n, d] := (X[n, d] - shift[d]) / scale[d], shift and scale fitted on the training split.

    kind "standard": shift = mean, scale = standard deviation (ddof=0); "minmax": shift = min,
    scale = max - min, mapping the training data onto [0, 1]. A constant column gets
    shift = its value and scale = 1, so it maps to 0.
    """

    KINDS = ("standard", "minmax")
    CHUNK = 1024                # rows read at once by fit

    def __init__(self, kind="standard"):
        self.kind = choice("kind", kind, self.KINDS)
        self.shift = self.scale = None

    def __repr__(self):
        fitted = f"fitted on {len(self.shift)} columns" if self.shift is not None else "not fitted"
        return f"Normaliser({self.kind!r}, {fitted})"

    def fit(self, X, rows=None):
        """Learn shift[d] and scale[d] from X[n, d] (the training split only: its `rows`,
        default all); returns self. Reads CHUNK rows at a time (a memory-mapped X stays on
        disk): min, max and mean in one pass, the variance about the mean in a second."""
        X = X if isinstance(X, np.ndarray) else np.asarray(X)      # a memory map stays one
        if X.ndim != 2 or len(X) == 0 or X.dtype.kind not in "biuf":
            raise ValueError("Normaliser.fit needs numbers X[n, d] with n >= 1, "
                             f"got {X.dtype} of shape {X.shape}")
        rows = np.arange(len(X)) if rows is None else np.asarray(rows)
        if len(rows) == 0:
            raise ValueError("Normaliser.fit needs at least one row")
        d = X.shape[1]
        lo, hi, total = np.full(d, np.inf), np.full(d, -np.inf), np.zeros(d)
        for chunk in _chunks(X, rows):
            if not np.isfinite(chunk).all():
                raise ValueError("Normaliser.fit: X holds non-finite values")
            lo, hi = np.minimum(lo, chunk.min(axis=0)), np.maximum(hi, chunk.max(axis=0))
            total += chunk.sum(axis=0)
        mean = total / len(rows)
        if self.kind == "standard":
            squares = sum(((chunk - mean) ** 2).sum(axis=0) for chunk in _chunks(X, rows))
            shift, scale = mean, np.sqrt(squares / len(rows))
        else:
            shift, scale = lo, hi - lo
        constant = hi == lo                  # exact, unlike std == 0 after rounding
        self.shift, self.scale = np.where(constant, lo, shift), np.where(constant, 1.0, scale)
        return self

    def transform(self, X):
        """X[n, d] -> Z[n, d], of X's dtype (float64 for integer X)."""
        if self.shift is None:
            raise ValueError("Normaliser: call fit (or from_dict) before transform")
        X = np.asarray(X)
        if X.ndim != 2 or X.shape[1] != len(self.shift):
            raise ValueError(f"Normaliser was fitted on {len(self.shift)} columns, "
                             f"got X of shape {X.shape}")
        dt = X.dtype if X.dtype.kind == "f" else np.float64
        return ((X - self.shift) / self.scale).astype(dt, copy=False)

    def fit_transform(self, X):
        """fit(X), then transform(X)."""
        return self.fit(X).transform(X)

    def to_dict(self):
        """{"kind", "shift", "scale"} as plain lists, for JSON checkpoints."""
        if self.shift is None:
            raise ValueError("Normaliser: nothing to save before fit")
        return {"kind": self.kind, "shift": self.shift.tolist(), "scale": self.scale.tolist()}

    @classmethod
    def from_dict(cls, state):
        """The fitted Normaliser that to_dict described."""
        try:
            norm = cls(state["kind"])
            shift, scale = (np.asarray(state[k], dtype=np.float64) for k in ("shift", "scale"))
        except (KeyError, TypeError, ValueError) as e:
            raise ValueError(f"not a Normaliser state: {e!r}") from None
        if (shift.ndim != 1 or shift.shape != scale.shape or not np.isfinite(shift).all()
                or not (np.isfinite(scale) & (scale > 0)).all()):
            raise ValueError("not a Normaliser state: shift and scale must be equally long lists "
                             "of finite numbers, scale > 0")
        norm.shift, norm.scale = shift, scale
        return norm


def _chunks(X, rows):
    """X's `rows`, Normaliser.CHUNK at a time, as float64 arrays."""
    for start in range(0, len(rows), Normaliser.CHUNK):
        yield np.asarray(X[np.sort(rows[start:start + Normaliser.CHUNK])], dtype=np.float64)
