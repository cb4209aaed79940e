"""The records of scaling sweeps: the sweeps a run belongs to, and the latest run of each layout."""

DENSE = "dense"
GHOST_K_RANKS = "ghost K=ranks"
FIXED_K = "ghost fixed K="          # + K: the sweep at one K for every rank count
SWEEP_TITLES = {
    GHOST_K_RANKS: "ghost, K = working ranks (the paper's layout: the network shrinks as "
                   "ranks grow, so its speed-ups mix parallelism with a smaller network)",
    DENSE: "dense (fully connected, the same network at every rank count)",
}
FIXED_TITLE = ("ghost, fixed K = {k} (the same network at every rank count that divides K: "
               "honest strong scaling)")
REPLICAS = " x{d} replicas"         # a sweep's layout repeated on D data-parallel replicas
REPLICAS_TITLE = "; on each of {d} replicas, which share every minibatch (data parallel)"


def fixed_sweep(k):
    return f"{FIXED_K}{k}"


def replicated(sweep, replicas):
    """The name of `sweep` run on `replicas` data-parallel replicas (itself for one)."""
    return sweep + REPLICAS.format(d=replicas) if replicas > 1 else sweep


def _split_replicas(sweep):
    base, _, rest = sweep.partition(" x")
    return (base, int(rest.split()[0])) if rest.endswith("replicas") else (sweep, 1)


def sweep_title(sweep):
    base, replicas = _split_replicas(sweep)
    title = (FIXED_TITLE.format(k=base[len(FIXED_K):]) if base.startswith(FIXED_K)
             else SWEEP_TITLES.get(base, base))
    return title + (REPLICAS_TITLE.format(d=replicas) if replicas > 1 else "")


def sweep_order(sweep):
    """K=ranks first, then the fixed-K sweeps by K, then dense; each by its replicas."""
    base, replicas = _split_replicas(sweep)
    if base == GHOST_K_RANKS:
        return (0, 0, replicas)
    if base.startswith(FIXED_K):
        return (1, int(base[len(FIXED_K):]), replicas)
    return (2, 0, replicas) if base == DENSE else (3, base, replicas)


def is_result(record):
    return record.get("kind") == "train"


def sweeps_of(record):
    """The sweeps a record belongs to: its own tag, else what its layout says."""
    if record.get("sweeps"):
        return list(record["sweeps"])
    replicas = replicas_of(record)
    if record.get("connectivity") == DENSE:
        return [replicated(DENSE, replicas)]
    if record.get("blocks") == record.get("working_ranks"):
        return [replicated(GHOST_K_RANKS, replicas)]
    return [replicated(fixed_sweep(record.get("blocks")), replicas)]


def replicas_of(record):
    """The record's data-parallel replicas (1 before grids existed)."""
    return (record.get("grid") or [1])[0]


def layout_key(record):
    return (record.get("model"), float(record.get("scale", 1.0)), record.get("connectivity"),
            record.get("blocks"), record.get("working_ranks"), bool(record.get("master")),
            record.get("batch"), record.get("dtype"), replicas_of(record))


def latest_by_layout(records):
    """The last line of each layout wins: a rerun replaces an older result or failure (the
    skip and failure lines carry no machine, so the machine is not part of the layout). It
    keeps the sweeps of the lines it replaces: the same layout measures the same thing."""
    latest = {}
    for record in records:
        key = layout_key(record)
        if key in latest:
            merged = sweeps_of(latest[key]) + [s for s in sweeps_of(record)
                                               if s not in sweeps_of(latest[key])]
            record = {**record, "sweeps": merged}
        latest[key] = record
    return list(latest.values())


def row_order(record):
    """Ascending total ranks; at equal ranks the one with fewer working ranks first."""
    return (record["ranks"], record["working_ranks"])


def median_seconds(record):
    return float(record["seconds_per_iteration"]["median"])
