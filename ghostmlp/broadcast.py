"""Reading on rank 0 only: read_on_root broadcasts the arrays one rank read to every rank."""
import numpy as np

# Exceptions that read_on_root raises on every rank as themselves; any other becomes ValueError.
RELAYED = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, OSError,
           ValueError)


def read_on_root(read, comm=None):
    """read() on rank 0 of comm only; every rank returns its result: an array or a tuple of arrays.

    Without comm, just read(). With one (collective: every rank must call), rank 0 broadcasts
    the arrays' shapes and dtypes (comm.bcast), then each array's bytes (comm.Bcast, no
    pickling). If read() raises on rank 0, every rank raises an error with its message: of
    its type when that is one of RELAYED (or derives from one), else ValueError.
    """
    if comm is None:
        return read()
    root, failure = comm.Get_rank() == 0, None
    if root:
        try:
            result = read()
            single = isinstance(result, np.ndarray)
            if not single and not isinstance(result, tuple):
                raise ValueError("read() must return a numpy array or a tuple, "
                                 f"got {type(result).__name__}")
            arrays = [np.asarray(a, order="C") for a in ([result] if single else result)]
            if any(a.dtype.hasobject for a in arrays):
                raise ValueError("read() must return arrays of numbers or strings, "
                                 "not Python objects")
            plan = ("arrays", single, [(a.shape, a.dtype) for a in arrays])
        except Exception as error:
            failure = error
            relayed = next((c for c in RELAYED if isinstance(error, c)), None)
            message = str(error) if relayed else f"{type(error).__name__}: {error}"
            plan = ("error", RELAYED.index(relayed or ValueError), message)
    plan = comm.bcast(plan if root else None, root=0)
    if plan[0] == "error":
        relayed, message = RELAYED[plan[1]], plan[2]
        if root and type(failure) is relayed:
            raise failure
        raise relayed(message) from failure
    _, single, specs = plan
    if not root:
        arrays = [np.empty(shape, dtype) for shape, dtype in specs]
    for a in arrays:
        comm.Bcast(a.reshape(-1).view(np.uint8), root=0)
    return arrays[0] if single else tuple(arrays)
