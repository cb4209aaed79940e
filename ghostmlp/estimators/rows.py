"""Blocks of rows of X, dense or scipy.sparse: a sparse X is densified one block at a time."""
import numpy as np
import scipy.sparse

BLOCK = 1024                # rows densified at once for prediction and full-batch losses


def row_major(X):
    """X ready for slicing rows: a sparse X as CSR (still sparse), a dense one as it is."""
    return X.tocsr() if scipy.sparse.issparse(X) else X


def block(X, start, stop, dtype):
    """Rows [start, stop) of X (row_major) as a dense C-contiguous dtype array."""
    rows = X[start:stop]
    rows = rows.toarray() if scipy.sparse.issparse(rows) else rows
    return np.ascontiguousarray(rows, dtype=dtype)


def blocks(n, size=BLOCK):
    """(start, stop) of the consecutive blocks of at most `size` of n rows."""
    return [(start, min(start + size, n)) for start in range(0, n, size)]
