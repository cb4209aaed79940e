"""The machine facts and limits (gemm rate, memory bandwidth) shared by all benchmarks."""
import os
import platform
import time

import numpy as np
import scipy
from scipy.linalg import blas
from threadpoolctl import threadpool_info

import ghostmlp

BANDWIDTH_BYTES = 512 * 2**20
SGEMM_SHAPES = [                            # (label, m, n, k) of C[m, n] = A[m, k] @ B[k, n]
    ("square 2048^3", 2048, 2048, 2048),
    ("update-like 4096x4096, k=256", 4096, 4096, 256),
    ("forward-like 256x4096, k=4096", 256, 4096, 4096),
]


# ------------------------------------------------------------------ machine facts

def _read_first(path, key):
    try:
        with open(path) as f:
            for line in f:
                if line.startswith(key):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _caches():
    """cpu0's caches from sysfs, e.g. "L1d 48K, L1i 32K, L2 1024K, L3 32768K"."""
    root, out = "/sys/devices/system/cpu/cpu0/cache", []
    try:
        for index in sorted(os.listdir(root)):
            def read(name):
                with open(os.path.join(root, index, name)) as f:
                    return f.read().strip()
            kind = {"Data": "d", "Instruction": "i"}.get(read("type"), "")
            out.append(f"L{read('level')}{kind} {read('size')}")
    except OSError:
        pass
    return ", ".join(out) or None


def mpi_library_version():
    """MPI.Get_library_version() of mpi4py's MPI (stripped), or None when mpi4py does not import."""
    try:
        from mpi4py import MPI
        return MPI.Get_library_version().strip()
    except Exception:       # not installed, or no MPI library behind it
        return None


def facts():
    """CPU, cores, memory, caches, BLAS (via threadpoolctl: version, core type, threads), versions, env, MPI.

    The BLAS thread counts are those in force when called: call it inside the
    benchmark's threadpool_limits to record what the measurement used.
    """
    flags = (_read_first("/proc/cpuinfo", "flags") or "").split()
    mem_kb = _read_first("/proc/meminfo", "MemTotal")
    pools = threadpool_info()
    blas_libs = [{
        "library": info.get("internal_api"),
        "version": info.get("version"),
        "architecture": info.get("architecture"),
        "threads": info.get("num_threads"),
        "threading_layer": info.get("threading_layer"),
        "file": os.path.basename(info.get("filepath", "")),
    } for info in pools if info.get("user_api") == "blas"]
    other_pools = [{
        "library": info.get("internal_api"),
        "version": info.get("version"),
        "threads": info.get("num_threads"),
        "file": os.path.basename(info.get("filepath", "")),
    } for info in pools if info.get("user_api") != "blas"]
    return {
        "cpu": _read_first("/proc/cpuinfo", "model name") or platform.processor(),
        "cpu_simd": " ".join(f for f in ("avx2", "fma", "avx512f") if f in flags) or "none",
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "caches_cpu0": _caches(),
        "memory_gib": round(int(mem_kb.split()[0]) / 2**20, 1) if mem_kb else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "blas": blas_libs,
        "other_threadpools": other_pools,       # e.g. the OpenMP runtime torch brings
        "python": platform.python_version(),
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "ghostmlp": getattr(ghostmlp, "__version__", "?"),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE", "(unset)"),
        "OPENBLAS_L2_SIZE": os.environ.get("OPENBLAS_L2_SIZE", "(unset)"),
        "mpi": mpi_library_version(),
    }


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
    """Best-of-N GFLOP/s of scipy's gemm (the BLAS the kernels call) per shape, Fortran-ordered.

    float32: sgemm, float64: dgemm. One dict per shape: shape, m, n, k, gflop, gflops.
    Runs under whatever thread limit is in force.
    """
    dtype = np.dtype(dtype)
    gemm = blas.sgemm if dtype == np.float32 else blas.dgemm
    name = "sgemm" if dtype == np.float32 else "dgemm"
    rng = np.random.default_rng(1)
    rates = []
    for label, m, n, k in shapes:
        a = np.asfortranarray(rng.random((m, k), dtype=dtype.type))
        b = np.asfortranarray(rng.random((k, n), dtype=dtype.type))
        c = np.zeros((m, n), dtype=dtype, order="F")
        run = lambda: gemm(1.0, a, b, beta=0.0, c=c, overwrite_c=1)
        run()
        seconds = best_time(run, repeats)
        rates.append({"shape": label, "m": m, "n": n, "k": k,
                      "gflop": 2 * m * n * k / 1e9, "gflops": 2 * m * n * k / seconds / 1e9})
        if log:
            log(f"  {name} {label}: {rates[-1]['gflops']:.1f} GFLOP/s")
        del a, b, c
    return rates


def sgemm_rate(repeats=5, dtype="float32", shapes=SGEMM_SHAPES, log=None):
    """The reference gemm rate in GFLOP/s: the best of gemm_rates() over a few shapes."""
    return max(r["gflops"] for r in gemm_rates(repeats, dtype, shapes, log))


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
    blas.sdot(a, a)
    read = best_time(lambda: blas.sdot(a, a), repeats)
    np.add(a, 0, out=a)
    inplace = best_time(lambda: np.add(a, 0, out=a), repeats)
    result = {
        "bytes": nbytes,
        "copy_gbs": 2 * nbytes / copy / 1e9,       # np.copyto(b, a): read a + write b
        "read_gbs": nbytes / read / 1e9,           # sdot(a, a): one read pass
        "inplace_gbs": 2 * nbytes / inplace / 1e9,  # np.add(a, 0, out=a): read + write a
    }
    if log:
        log(f"  bandwidth: copy {result['copy_gbs']:.1f}, read {result['read_gbs']:.1f}, "
            f"in-place {result['inplace_gbs']:.1f} GB/s")
    return result
