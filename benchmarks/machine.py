"""The machine's limits (gemm rate, memory bandwidth) shared by all benchmarks, and its facts."""
import time

import numpy as np

from ghostmlp import _kernels
from ghostmlp.bench import machine_facts as facts  # noqa: F401 (the benchmarks' name for it)

BANDWIDTH_BYTES = 512 * 2**20
SGEMM_SHAPES = [                            # (label, m, n, k) of C[m, n] = A[m, k] @ B[k, n]
    ("square 2048^3", 2048, 2048, 2048),
    ("update-like 4096x4096, k=256", 4096, 4096, 256),
    ("forward-like 256x4096, k=4096", 256, 4096, 4096),
]


# ------------------------------------------------------------- machine limits

def best_time(fn, repeats):
    """Shortest of `repeats` timings: a machine limit is what it can do, noise only slows it."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def gemm_rates(repeats=5, dtype="float32", shapes=SGEMM_SHAPES, log=None):
    """Best-of-N GFLOP/s of the kernels' own gemm (ghostmlp.blas's library) per shape, Fortran-ordered.

    float32: sgemm, float64: dgemm. One dict per shape: shape, m, n, k, gflop, gflops.
    Runs under whatever thread limit is in force.
    """
    dtype = np.dtype(dtype)
    name = "sgemm" if dtype == np.float32 else "dgemm"
    rng = np.random.default_rng(1)
    rates = []
    for label, m, n, k in shapes:
        a = np.asfortranarray(rng.random((m, k), dtype=dtype.type))
        b = np.asfortranarray(rng.random((k, n), dtype=dtype.type))
        c = np.zeros((m, n), dtype=dtype, order="F")
        run = lambda: _kernels.gemm(1.0, a, b, 0.0, c)
        run()
        seconds = best_time(run, repeats)
        rates.append({"shape": label, "m": m, "n": n, "k": k,
                      "gflop": 2 * m * n * k / 1e9, "gflops": 2 * m * n * k / seconds / 1e9})
        if log:
            log(f"  {name} {label}: {rates[-1]['gflops']:.1f} GFLOP/s")
        del a, b, c
    return rates


def bandwidth(repeats=5, nbytes=BANDWIDTH_BYTES, log=None):
    """Best-of-N GB/s (1e9 B/s) of a float32 copy, read-only stream and in-place read+write.

    Returns {"bytes", "copy_gbs", "read_gbs", "inplace_gbs"}; reads and writes both count.
    """
    n = nbytes // 4
    a = np.ones(n, dtype=np.float32)
    b = np.zeros(n, dtype=np.float32)          # both touched: page faults stay out of timing
    nbytes = a.nbytes
    np.copyto(b, a)
    copy = best_time(lambda: np.copyto(b, a), repeats)
    np.dot(a, a)
    read = best_time(lambda: np.dot(a, a), repeats)
    np.add(a, 0, out=a)
    inplace = best_time(lambda: np.add(a, 0, out=a), repeats)
    result = {
        "bytes": nbytes,
        "copy_gbs": 2 * nbytes / copy / 1e9,       # np.copyto(b, a): read a + write b
        "read_gbs": nbytes / read / 1e9,           # np.dot(a, a) (sdot): one read pass
        "inplace_gbs": 2 * nbytes / inplace / 1e9,  # np.add(a, 0, out=a): read + write a
    }
    if log:
        log(f"  bandwidth: copy {result['copy_gbs']:.1f}, read {result['read_gbs']:.1f}, "
            f"in-place {result['inplace_gbs']:.1f} GB/s")
    return result
