"""The memory cap of the out-of-core tests: what a process may allocate beyond what it holds."""
import resource

import numpy as np

HEADROOM = 96 * 2**20       # bytes the process may allocate beyond what it holds at the start


def data_bytes():
    """This process's data segment (heap and private mappings), from /proc."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmData:"))
    return int(line.split()[1]) * 1024


def cap_below(X):
    """From now on this process may allocate at most HEADROOM more bytes (RLIMIT_DATA),
    less than a float64 copy of X; whether such a copy could still be made (it must not)."""
    assert X.size * 8 > HEADROOM
    resource.setrlimit(resource.RLIMIT_DATA, (data_bytes() + HEADROOM, resource.RLIM_INFINITY))
    try:
        np.asarray(X, dtype=np.float64)
        return True
    except MemoryError:
        return False
