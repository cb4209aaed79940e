"""Machine files: the measured (or published) rates a step's cost is predicted from, and the collectives' cost model."""
import json
import math
import os

import numpy as np

MACHINE_FORMAT = "ghostmlp-machine/1"
MACHINE_VARIABLE = "GHOSTMLP_MACHINE"      # the machine file read when none is named
OPERATIONS = ("p2p", "allgather", "reduce_scatter", "allreduce")


class MissingParameters(ValueError):
    """The machine file lacks what a prediction needs (communication, or a dtype's GEMM rates)."""


def collective_terms(operation, ranks):
    """(a, b, c) of T = a α + b n β + c n γ: `operation` among `ranks` ranks on n bytes.

    Thakur, Rabenseifner & Gropp, "Optimization of collective communication operations
    in MPICH", IJHPCA 19(1), 2005; L = ⌈log2 p⌉:

        p2p             (1, 1, 0)                  n bytes to and from each ring neighbour at once
        allgather       (L, (p-1)/p, 0)            n: the gathered bytes
        reduce_scatter  (L, (p-1)/p, (p-1)/p)      n: the bytes each rank contributes
        allreduce       (2L, 2(p-1)/p, (p-1)/p)    Rabenseifner's; n: the vector's bytes

    α [s], β [s/byte] are fitted per operation to the machine's measurements (one pair per
    range of message sizes: MPI changes protocol, large messages leave the caches), γ
    [s/byte] (the reduction's arithmetic) is measured once. One rank's collective is free.
    """
    if operation == "p2p":
        return 1.0, 1.0, 0.0
    if ranks <= 1:
        return 0.0, 0.0, 0.0
    steps, share = math.ceil(math.log2(ranks)), (ranks - 1) / ranks
    return {"allgather": (steps, share, 0.0), "reduce_scatter": (steps, share, share),
            "allreduce": (2 * steps, 2 * share, share)}[operation]


def collective_seconds(operation, ranks, nbytes, lines, gamma):
    """T = a α + b n β + c n γ (collective_terms), α and β those of the last of
    lines [{from_bytes, alpha_s, beta_s_per_byte[, to_bytes]}] (by from_bytes) that starts
    at or below n. A line with to_bytes (its largest fitted size) holds up to there; from
    there to the next line's from_bytes, T is interpolated linearly between the two lines."""
    index = [j for j, line in enumerate(lines) if line["from_bytes"] <= nbytes][-1]
    line = lines[index]
    end = line.get("to_bytes")
    if end is not None and nbytes > end and index + 1 < len(lines):
        start = lines[index + 1]["from_bytes"]
        low, high = (_line_seconds(operation, ranks, n, each, gamma)
                     for n, each in ((end, line), (start, lines[index + 1])))
        return low + (high - low) * (nbytes - end) / (start - end)
    return _line_seconds(operation, ranks, nbytes, line, gamma)


def _line_seconds(operation, ranks, nbytes, line, gamma):
    a, b, c = collective_terms(operation, ranks)
    return a * line["alpha_s"] + b * nbytes * line["beta_s_per_byte"] + c * nbytes * gamma


class Machine:
    """A machine file (README, "Choosing a layout"): the per-rank rates of a full node.

    gemm: measured (or assumed) flop/s of GEMMs by shape; bandwidth_bytes_per_s: a copy's
    bytes read + written per second on each rank while every rank streams (and, where
    measured, cached_bandwidth_bytes_per_s for passes of up to cache_bytes); comm: α, β
    lines per operation and γ, or None when measured on one rank; overlap: the share of a
    non-blocking all-reduce that travels during compute (1 unless measured). measured: kind
    "measured" (the GEMM rates hold their shapes' memory traffic).
    """

    def __init__(self, data, path=None):
        if not isinstance(data, dict) or data.get("format") != MACHINE_FORMAT:
            raise ValueError(f"{path or 'machine'}: not a {MACHINE_FORMAT} machine file")
        self.data, self.path = data, path
        self.name = data.get("name") or path or "machine"
        self.bandwidth = float(data["bandwidth_bytes_per_s"])
        self.memory_per_rank = float(data["memory_bytes_per_rank"])
        self.baseline = float(data.get("baseline_bytes_per_rank") or 0.0)
        self.comm = data.get("comm")
        self.overlap = float((self.comm or {}).get("overlap", 1.0))
        self.measured = data.get("kind") == "measured"
        self.cache_bytes = float(data.get("cache_bytes") or 0.0)
        self.ranks_per_node = max(1, int(data.get("ranks_per_node") or 1))
        # the last-level cache's share of each of the node's ranks (0: not known)
        self.last_level_share = (float(data.get("last_level_cache_bytes") or 0.0)
                                 / self.ranks_per_node)
        self.cached_bandwidth = float(data.get("cached_bandwidth_bytes_per_s") or self.bandwidth)
        points = {}     # (dtype, family or None) -> {log2 big: {log2 small: [flop/s]}}
        for entry in data["gemm"]:
            dims = [entry["m"], entry["n"], entry["k"]]
            family = "cube" if len(set(dims)) == 1 else "mnk"[dims.index(min(dims))]
            small, big = _small_and_big(*dims)
            for key in ((entry["dtype"], family), (entry["dtype"], None)):
                level = points.setdefault(key, {}).setdefault(big, {})
                level.setdefault(small, []).append(float(entry["flops_per_s"]))
        self._rates = {key: [(big, np.array(sorted(level)),
                              np.array([np.mean(level[x]) for x in sorted(level)]))
                             for big, level in sorted(levels.items())]
                       for key, levels in points.items()}

    def gemm_rate(self, m, n, k, dtype, streamed=False):
        """flop/s of C[m, n] = A[m, k] B[k, n]: the lesser of two interpolations, linear in log2.

        By shape: among the measured GEMMs whose smallest dimension is the same one (m, n
        or k), else among all of the dtype, in the smallest dimension and then in the
        geometric mean of the other two (the large operand: in cache or streamed; with
        streamed, the largest measured, which streams from memory); by size: among the
        measured cubes s x s x s, where there are any, at s = (m n k)^(1/3) (small GEMMs
        run slower). Constant beyond the measured range.
        """
        dims = (m, n, k)
        family = "mnk"[dims.index(min(dims))]
        by_shape = self._rates.get((dtype, family)) or self._rates.get((dtype, None))
        if by_shape is None:
            raise MissingParameters(f"the machine file {self.name} has no {dtype} GEMM rates")
        small, big = _small_and_big(m, n, k)
        rate = _interpolate(by_shape, small, max(big, by_shape[-1][0]) if streamed else big)
        cubes = self._rates.get((dtype, "cube"))
        if cubes is not None:
            side = math.log2(m * n * k) / 3
            rate = min(rate, _interpolate(cubes, side, side))
        return rate

    def gemm_seconds(self, m, n, k, dtype, accumulate=False, working_bytes=0.0):
        """2 m n k / rate; unless measured, at least s (m k + k n + (1 + accumulate) m n) /
        bandwidth, s the itemsize.

        The second term is the least memory traffic (A and B read, C written, and read too
        when accumulated into): it binds where the rate table does not (a flat assumed
        rate); measured rates already hold it, for the traffic of their own shapes.
        working_bytes: what the step sweeps through besides (a rank's weights); beyond its
        share of the last-level cache, a large operand that the level-2 cache does not hold
        streams from memory, however it ran when timed alone (gemm_rate's streamed).
        """
        if not (m and n and k):
            return 0.0
        s = np.dtype(dtype).itemsize
        large = s * math.prod(sorted((m, n, k))[1:])
        streamed = (self.last_level_share > 0 and working_bytes > self.last_level_share
                    and large > self.cache_bytes)
        seconds = 2.0 * m * n * k / self.gemm_rate(m, n, k, dtype, streamed)
        if self.measured:
            return seconds
        traffic = s * (m * k + k * n + (1 + accumulate) * m * n)
        return max(seconds, traffic / self.bandwidth)

    def activation_seconds(self, activation, values, dtype):
        """Seconds of the arithmetic of an activation ("sigmoid", "softmax", ...: a
        ghostmlp.network.ACTIVATIONS name) over `values` values, from the file's
        activation_seconds_per_value ({dtype: {name: seconds}}, as calibrate measures it);
        0 where it holds none."""
        rates = (self.data.get("activation_seconds_per_value") or {}).get(dtype, {})
        return values * rates.get(activation, 0.0)

    def stream_seconds(self, nbytes):
        """Seconds to move nbytes (reads and writes counted) through memory, or through the
        cache where a pass of that many bytes fits in it."""
        rate = self.cached_bandwidth if nbytes <= self.cache_bytes else self.bandwidth
        return nbytes / rate

    def comm_seconds(self, operation, ranks, nbytes):
        """T(operation, p, n) of collective_terms: this machine's γ and α, β of n's range."""
        if not self.comm:
            raise MissingParameters(
                f"the machine file {self.name} has no communication parameters (measured on "
                "one rank): calibrate under mpiexec with 2 or more ranks to predict layouts "
                "that send messages")
        return collective_seconds(operation, ranks, nbytes, self.comm[operation]["lines"],
                                  self.comm["gamma_s_per_byte"])


def _small_and_big(m, n, k):
    """(log2 of the smallest dimension, log2 of the geometric mean of the other two)."""
    dims = sorted((m, n, k))
    return math.log2(dims[0]), (math.log2(dims[1]) + math.log2(dims[2])) / 2


def _interpolate(levels, small, big):
    """Rate at (small, big) from [(big, smalls, rates)]: in small within each level, then in big."""
    at = [float(np.interp(small, smalls, rates)) for _, smalls, rates in levels]
    return float(np.interp(big, [level[0] for level in levels], at))


def load_machine(path=None):
    """The Machine of a machine file: `path`, else the file named by $GHOSTMLP_MACHINE."""
    path = path or os.environ.get(MACHINE_VARIABLE)
    if not path:
        raise ValueError(f"no machine file: name one (--machine FILE) or set ${MACHINE_VARIABLE}; "
                         "`ghostmlp plan --calibrate` measures this machine")
    with open(path) as f:
        return Machine(json.load(f), path)
