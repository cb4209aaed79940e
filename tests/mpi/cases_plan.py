"""Planner cases, run on every rank under mpiexec by tests/test_plan.py; verdicts are allreduced."""
from pathlib import Path

import numpy as np
import pytest
from mpi4py import MPI

from cases_model_parallel import everywhere
from ghostmlp import Network, calibrate, plan
from ghostmlp.machine import OPERATIONS

comm = MPI.COMM_WORLD
P = comm.Get_size()
BLUEGENE = Path(__file__).resolve().parents[2] / "benchmarks" / "machines" / "bluegene_q.json"


def test_calibration_writes_a_well_formed_machine_file(tmp_path):
    path = tmp_path / f"machine_{comm.Get_rank()}.json"
    calibrate.write(calibrate.calibrate(comm, quick=True), path)
    m = plan.load_machine(str(path))
    fitted = [m.comm[op] for op in OPERATIONS]
    lines = [line for f in fitted for line in f["lines"]]
    counts = sorted({2**i for i in range(1, P.bit_length())} | {P})     # 2, 4, ... and P
    everywhere(m.data["ranks"] == P and m.comm["ranks"] == counts and m.data["facts"]["mpi"]
               and all(len(f["points"]) == 4 * len(counts) and f["lines"][0]["from_bytes"] == 0
                       and f["max_relative_error"] >= 0 for f in fitted)
               and all(line["alpha_s"] >= 0 and line["beta_s_per_byte"] >= 0 for line in lines)
               and m.comm["gamma_s_per_byte"] > 0 and 0 <= m.overlap <= 1,
               "communication parameters")
    everywhere(m.bandwidth > 0 and {e["dtype"] for e in m.data["gemm"]} == {"float32", "float64"},
               "compute parameters")
    sweeps, reported = m.data["last_level_sweeps"], m.data["last_level_cache_reported_bytes"]
    everywhere(not reported or (
        all(size > 0 and rate > 0 for size, rate in sweeps)
        and m.data["cache_bytes"] * m.data["ranks_per_node"] <= m.data["last_level_cache_bytes"]
        <= max(sweeps[-1][0], m.data["cache_bytes"]) * m.data["ranks_per_node"]),
        f"the last-level cache in effect {m.data['last_level_cache_bytes']} of {reported}")
    overheads = m.data["step_overheads"]
    everywhere(set(overheads) == set(plan.overhead_kinds(P, one_node=True))   # this job's node
               and all(entry["step_s"] >= 0 and entry["layer_s"] >= 0
                       for entry in overheads.values()), "step overheads of every kind")
    result = plan.recommend([3, 64, 128, 256, 64], 32, P, m)
    everywhere(result.layout in plan.enumerate_layouts([3, 64, 128, 256, 64], 32, P),
               "a recommendation")


@pytest.mark.parametrize("options", [
    {"connectivity": "dense"}, {"connectivity": "dense", "master": True},
    {"connectivity": "ghost", "blocks": 2 * P},
    {"connectivity": "ghost", "blocks": 2 * P, "ghost_gradients": "local"}])
def test_predicted_messages_and_collectives_are_the_steps(options):
    sizes, batch = [5, 16, 13, 8], 6      # 2 P blocks fit in every layer up to 4 ranks
    net = Network(seed=0, dtype="float64", comm=comm, **options)
    net.add_layer("input", sizes[0]).add_layer("hidden", sizes[1]).add_layer("hidden", sizes[2])
    net.add_layer("output", sizes[3]).initialize()
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(batch, sizes[0])), rng.integers(0, sizes[-1], batch)
    net.train_step(X, y)
    net.reset_stats()
    for _ in range(3):
        net.train_step(X, y)
    stats = net.stats()
    layout = plan.Candidate((1, P), options["connectivity"], options.get("blocks", 1),
                            options.get("master", False))
    counts = plan.predict(sizes, batch, layout, plan.load_machine(str(BLUEGENE)), "float64",
                          ghost_gradients=options.get("ghost_gradients", "exact")).counts
    worker = comm.allgather(stats["collectives"])[int(layout.master)]
    everywhere(stats["messages_max"] == counts["messages"]
               and all(worker.get(kind, 0) == counts[kind]
                       for kind in ("allgather", "reduce_scatter")), f"counts of {options}")
