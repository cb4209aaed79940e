"""The memory cap of the out-of-core tests: what a process may allocate beyond what it holds."""
import resource

HEADROOM = 96 * 2**20       # bytes the process may allocate beyond what it holds at the start


def data_bytes():
    """This process's data segment (heap and private mappings), from /proc."""
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmData:"))
    return int(line.split()[1]) * 1024


def cap():
    """From now on this process may allocate at most HEADROOM more bytes (RLIMIT_DATA)."""
    resource.setrlimit(resource.RLIMIT_DATA, (data_bytes() + HEADROOM, resource.RLIM_INFINITY))
