"""The layout planner: cost model against hand-computed steps, layout enumeration, the choice, machine files."""
import argparse
import itertools
import json
import math
import sys
from pathlib import Path

import pytest

from ghostmlp import bench, calibrate, optim, plan
from ghostmlp import machine as machine_file
from ghostmlp.network import ACTIVATIONS
from ghostmlp.partition import check_layout
from test_mpi import mpiexec, run

ROOT = Path(__file__).resolve().parents[1]
S = bench.MODELS["S"]
US, NS = 1e-6, 1e-9


def machine(rate=1e9, bandwidth=1e18, alpha=1 * US, beta=1 * NS, gamma=0.0, comm=True,
            memory=2.0**40, baseline=0.0):
    """A synthetic machine: one flat GEMM rate, α, β of every operation alike."""
    data = {
        "format": machine_file.MACHINE_FORMAT, "name": "synthetic", "bandwidth_bytes_per_s": bandwidth,
        "memory_bytes_per_rank": memory, "baseline_bytes_per_rank": baseline,
        "gemm": [{"dtype": d, "m": 64, "n": 64, "k": 64, "flops_per_s": rate}
                 for d in ("float32", "float64")],
        "comm": None if not comm else {
            "gamma_s_per_byte": gamma,
            **{op: {"lines": [{"from_bytes": 0, "alpha_s": alpha, "beta_s_per_byte": beta}]}
               for op in machine_file.OPERATIONS}},
    }
    return machine_file.Machine(data)


def predict(sizes, batch, grid, connectivity="dense", blocks=1, master=False, m=None, **options):
    layout = plan.Candidate(grid, connectivity, blocks, master)
    return plan.predict(sizes, batch, layout, m or machine(), dtype="float64", **options)


# ------------------------------------------------------------------ cost model

def test_collective_terms_are_thakur_rabenseifner_gropp():
    assert machine_file.collective_terms("p2p", 7) == (1, 1, 0)
    assert machine_file.collective_terms("allgather", 1) == (0, 0, 0)
    assert machine_file.collective_terms("allgather", 5) == (3, 0.8, 0)          # ⌈log2 5⌉ = 3
    assert machine_file.collective_terms("reduce_scatter", 4) == (2, 0.75, 0.75)
    assert machine_file.collective_terms("allreduce", 4) == (4, 1.5, 0.75)


def test_dense_two_ranks_equals_the_hand_computed_step():
    # 4-6-2, batch 3, float64: worker 0 owns 3 of 6 hidden neurons and 1 of 2 outputs.
    p = predict([4, 6, 2], 3, (1, 2), m=machine(gamma=0.5 * NS))
    # flops: forward 2·3·3·4 + 2·3·1·6, output delta 2·3·6·1,
    # gradients 2·1·6·3 + 2·3·4·3
    assert p.seconds["gemm"] == pytest.approx(252 * NS)
    # allgather(2, 6·3·8 = 144 B) + allgather(2, 2·3·8 = 48 B) + reduce_scatter(2, 144 B):
    # 3 α + ½·144 β + ½·48 β + ½·144 (β + γ)
    assert p.comm_s == pytest.approx(3 * US + (72 + 24 + 72 + 36) * NS)
    assert p.seconds["gather"] == pytest.approx(2 * US + 96 * NS)
    assert p.compute_s == pytest.approx(252 * NS)
    assert p.total_s == pytest.approx(252 * NS + 3.204 * US)
    assert p.counts == {"messages": 0, "allgather": 2, "reduce_scatter": 1, "allreduce": 0}
    assert p.batch_share == 3 and p.connections == 4 * 6 + 6 * 2
    assert p.parameters == 4 * 3 + 3 + 6 * 1 + 1


def test_ghost_halo_overlaps_the_interior_and_exact_gradients_go_back():
    # 4-8-8-4, ghost K = 2 on 2 ranks, batch 2: worker 0 holds 4 of each hidden layer
    # (first: 4 inputs; second: 4 + 2 ghosts) and 2 outputs (4 + 2 ghosts).
    p = predict([4, 8, 8, 4], 2, (1, 2), "ghost", 2)
    halo = 1 * US + 2 * 8 * NS                        # α + b s β, both neighbours at once
    # forward GEMMs 64 and 96 ns, interiors half of them (2 of 4 neurons go first)
    assert p.seconds["halo"] == pytest.approx(4 * halo)
    assert p.seconds["halo_exposed"] == pytest.approx(
        (halo - 32 * NS) + (halo - 48 * NS) + 2 * halo)
    assert p.seconds["gemm"] == pytest.approx((64 + 96 + 48 + 48 + 48 + 96 + 96 + 64) * NS)
    assert p.comm_s == pytest.approx(p.seconds["halo_exposed"] + 1 * US + 32 * NS)
    assert p.counts == {"messages": 8, "allgather": 1, "reduce_scatter": 0, "allreduce": 0}
    # ghosts as constants: no messages back, and the delta GEMMs skip the two ghost rows
    local = predict([4, 8, 8, 4], 2, (1, 2), "ghost", 2, ghost_gradients="local")
    assert local.counts["messages"] == 4
    assert local.seconds["gemm"] == pytest.approx((560 - 16 - 32) * NS)
    # a slow GEMM hides the forward halo entirely
    slow = predict([4, 8, 8, 4], 2, (1, 2), "ghost", 2, m=machine(rate=1e6))
    assert slow.seconds["halo_exposed"] == pytest.approx(2 * halo)


def test_data_parallel_buckets_overlap_the_backward_of_earlier_layers():
    # 4-6-2 on a grid of 2 replicas, batch 4: 2 samples each, the whole network on each rank;
    # gradients 30 + 14 values, 8 bytes each, the first bucket also carries the loss.
    one = predict([4, 6, 2], 4, (2, 1))
    assert one.seconds["gemm"] == pytest.approx(336 * NS)
    assert one.counts["allreduce"] == 1
    allreduce = lambda nbytes: 2 * US + nbytes * NS      # 2⌈log2 2⌉ α + 2·½ n β
    assert one.comm_s == pytest.approx(allreduce(45 * 8))  # posted when the backward ends
    # one layer per bucket: layer 2's (with the loss) is posted at 96 ns, layer 1's at 192 ns
    # but starts only when the first ends
    two = predict([4, 6, 2], 4, (2, 1), bucket_bytes=1)
    assert two.counts["allreduce"] == 2
    assert two.seconds["allreduce"] == pytest.approx(allreduce(15 * 8) + allreduce(30 * 8))
    assert two.comm_s == pytest.approx(96 * NS + allreduce(120) + allreduce(240) - 192 * NS)
    # with a slow GEMM the first bucket hides behind layer 1's backward: only the last shows
    slow = predict([4, 6, 2], 4, (2, 1), bucket_bytes=1, m=machine(rate=1e6))
    assert slow.comm_s == pytest.approx(allreduce(240))


def test_replicas_that_share_memory_split_the_update_and_all_reduce_no_gradient():
    # 4-6-2 on 2 replicas of batch 4 (2 samples each): each computes half the gradient rows
    # over all 4 samples, the same flops as its own samples over every row
    layout = plan.Candidate((2, 1), replica_update="shared")
    shared = plan.predict([4, 6, 2], 4, layout, machine(), dtype="float64")
    assert shared.seconds["gemm"] == pytest.approx(336 * NS)
    one_value = 2 * US + 8 * NS                          # an all-reduce of one float64
    # the loss's sum once the deltas are written, a barrier after the update
    assert shared.comm_s == pytest.approx(2 * one_value)
    assert shared.counts["allreduce"] == 1 and shared.counts["barrier"] == 1
    m = machine(rate=1e30, bandwidth=1e9)                   # only memory traffic costs
    sgd = plan.predict([4, 6, 2], 4, layout, m, dtype="float64")
    assert sgd.seconds["optimizer"] == 0    # plain SGD updates in the GEMM; nothing is copied
    # half of W and b (one copy for both replicas); buffers (2·(6 + 2) + 2·4 + 4)·2
    assert sgd.memory_bytes == 8 * (44 / 2 + 56)
    adam = plan.predict([4, 6, 2], 4, layout, m, dtype="float64", optimizer="adam")
    # the pass over half of W, G and the moments
    assert adam.seconds["optimizer"] == pytest.approx(8 * 44 * 7 / 2 / 1e9)
    # half of W and the moments, all of G
    assert adam.memory_bytes == 8 * (44 * 3 / 2 + 44 + 56)


def test_shared_replicas_are_candidates_when_the_job_fits_on_one_node():
    found = [str(c) for c in plan.enumerate_layouts(S, 32, 2, ranks_per_node=2)]
    assert "2 x 1 dense shared" in found and "2 x 1 dense" in found
    assert not any("shared" in str(c) for c in plan.enumerate_layouts(S, 32, 2))
    assert not any(c.shared and c.master
                   for c in plan.enumerate_layouts(S, 32, 4, ranks_per_node=4))


def test_a_machine_without_overlap_exposes_every_bucket():
    allreduce = lambda nbytes: 2 * US + nbytes * NS      # 2⌈log2 2⌉ α + 2·½ n β
    m = machine(rate=1e6)                    # slow GEMMs: with overlap, one bucket hides
    hidden = predict([4, 6, 2], 4, (2, 1), bucket_bytes=1, m=m)
    m.comm["overlap"] = 0.0
    none = predict([4, 6, 2], 4, (2, 1), bucket_bytes=1, m=machine_file.Machine(m.data))
    assert none.comm_s == pytest.approx(allreduce(120) + allreduce(240))
    m.comm["overlap"] = 0.5
    half = predict([4, 6, 2], 4, (2, 1), bucket_bytes=1, m=machine_file.Machine(m.data))
    assert half.comm_s == pytest.approx((hidden.comm_s + none.comm_s) / 2)
    assert hidden.comm_s == pytest.approx(allreduce(240))


def test_elementwise_optimizer_and_memory_bytes():
    m = machine(rate=1e30, bandwidth=1e9)           # only memory traffic costs
    p = predict([4, 6, 2], 3, (1, 1), m=m)
    # values: transpose 12, loss 6, activations 18 + 6, bias gradients 6 + 18, act' 18
    assert p.seconds["elementwise"] == pytest.approx(2 * 8 * 84 / 1e9)
    # s (m k + k n + m n) per GEMM, the gradients' C twice: 432 + 288 + 384 + 288 + 624 B
    assert p.seconds["gemm"] == pytest.approx(2016 / 1e9)
    assert p.seconds["optimizer"] == 0                       # plain SGD: in the gradient GEMM
    # weights and biases 30 + 14; buffers: acts and deltas 2·(6 + 2)·3, inputs 2·4·3, 4·3
    assert p.memory_bytes == 8 * (44 + 84)
    adam = predict([4, 6, 2], 3, (1, 1), m=m, optimizer="adam")
    assert adam.seconds["optimizer"] == pytest.approx(8 * 44 * (2 + 1 + 4) / 1e9)
    assert adam.memory_bytes == 8 * (44 * 4 + 84)           # W, G, exp_avg, exp_avg_sq
    momentum = predict([4, 6, 2], 3, (1, 1), m=m, optimizer=optim.SGD(0.1, momentum=0.9))
    assert momentum.seconds["optimizer"] == pytest.approx(8 * 44 * (2 + 0 + 2) / 1e9)
    replicas = predict([4, 6, 2], 4, (2, 1), m=m)          # D > 1: gradients, then a pass
    assert replicas.seconds["optimizer"] == pytest.approx(8 * 44 * 3 / 1e9)


def test_gemm_rate_interpolates_in_log2_of_the_smallest_dimension():
    data = {"format": machine_file.MACHINE_FORMAT, "bandwidth_bytes_per_s": 1e18,
            "memory_bytes_per_rank": 1e12,
            "gemm": [{"dtype": "float32", "m": 1, "n": 512, "k": 512, "flops_per_s": 1e9},
                     {"dtype": "float32", "m": 4, "n": 512, "k": 512, "flops_per_s": 3e9},
                     {"dtype": "float32", "m": 512, "n": 512, "k": 16, "flops_per_s": 8e9}]}
    m = machine_file.Machine(data)
    assert m.gemm_rate(2, 100, 100, "float32") == pytest.approx(2e9)     # halfway in log2
    assert m.gemm_rate(64, 100, 100, "float32") == pytest.approx(3e9)    # beyond: the last
    assert m.gemm_rate(100, 100, 16, "float32") == pytest.approx(8e9)    # its own family
    assert m.gemm_rate(100, 8, 100, "float32") == pytest.approx(5.5e9)  # no n: all of them
    assert m.gemm_seconds(2, 100, 100, "float32") == pytest.approx(2 * 2 * 100 * 100 / 2e9)
    with pytest.raises(machine_file.MissingParameters, match="float64"):
        m.gemm_rate(2, 2, 2, "float64")
    # cubes bound small GEMMs by (m n k)^(1/3): 64 x 64 x 16 is a 40-cube's worth of work
    data["gemm"] += [{"dtype": "float32", "m": s, "n": s, "k": s, "flops_per_s": r}
                     for s, r in ((32, 2e9), (64, 6e9))]
    m = machine_file.Machine(data)
    cube = 2e9 + 4e9 * (math.log2(64 * 64 * 16) / 3 - 5)         # between the 32 and 64 cubes
    assert m.gemm_rate(64, 64, 16, "float32") == pytest.approx(cube)     # not k's 8e9
    assert m.gemm_rate(512, 512, 16, "float32") == pytest.approx(6e9)
    assert m.gemm_rate(2, 100, 100, "float32") == pytest.approx(2e9)


def test_gemm_rate_interpolates_between_cached_and_streamed_operands():
    data = {"format": machine_file.MACHINE_FORMAT, "bandwidth_bytes_per_s": 1e18,
            "memory_bytes_per_rank": 1e12,
            "gemm": [{"dtype": "float64", "m": 1, "n": b, "k": b, "flops_per_s": r}
                     for b, r in ((512, 10e9), (4096, 4e9))]}
    m = machine_file.Machine(data)
    assert m.gemm_rate(1, 1024, 2048, "float64") == pytest.approx(7e9)   # 2^10.5: halfway
    assert m.gemm_rate(1, 64, 64, "float64") == pytest.approx(10e9)
    assert m.gemm_rate(8192, 1, 8192, "float64") == pytest.approx(4e9)   # no n family: all


def test_measured_rates_hold_their_traffic_and_published_ones_are_floored_by_it():
    data = {"format": machine_file.MACHINE_FORMAT, "bandwidth_bytes_per_s": 1e9,
            "memory_bytes_per_rank": 1e12,
            "gemm": [{"dtype": "float32", "m": 1, "n": 64, "k": 64, "flops_per_s": 1e9}]}
    traffic = 4 * (64 + 64 * 64 + 64) / 1e9         # x read, W read, y written
    flops = 2 * 64 * 64 / 1e9
    assert machine_file.Machine(data).gemm_seconds(1, 64, 64, "float32") == pytest.approx(traffic)
    measured = machine_file.Machine({**data, "kind": "measured"})
    assert measured.gemm_seconds(1, 64, 64, "float32") == pytest.approx(flops)


def test_a_step_larger_than_the_last_level_cache_streams_its_large_operands():
    data = {"format": machine_file.MACHINE_FORMAT, "kind": "measured",
            "bandwidth_bytes_per_s": 1e9, "memory_bytes_per_rank": 1e12, "cache_bytes": 2**20,
            "last_level_cache_bytes": 32 * 2**20, "ranks_per_node": 2,
            "gemm": [{"dtype": "float32", "m": 1, "n": b, "k": b, "flops_per_s": r}
                     for b, r in ((512, 16e9), (4096, 4e9))]}
    m = machine_file.Machine(data)
    flops = 2 * 2048 * 2048
    alone = flops / 8e9                                  # 2^11: two thirds of the way in log2
    assert m.gemm_seconds(1, 2048, 2048, "float32") == pytest.approx(alone)
    assert m.gemm_seconds(1, 2048, 2048, "float32", working_bytes=16 * 2**20) == pytest.approx(alone)
    swept = m.gemm_seconds(1, 2048, 2048, "float32", working_bytes=17 * 2**20)
    assert swept == pytest.approx(flops / 4e9)           # beyond the rank's 16 MiB share
    small = m.gemm_seconds(1, 256, 256, "float32", working_bytes=1e9)    # 256 KiB: in L2
    assert small == pytest.approx(2 * 256 * 256 / 16e9)
    unknown = machine_file.Machine({**data, "last_level_cache_bytes": None})
    assert unknown.gemm_seconds(1, 2048, 2048, "float32", working_bytes=1e9) == pytest.approx(alone)


def test_an_activation_takes_at_least_its_arithmetic():
    m = machine(rate=1e30, bandwidth=1e9)           # only memory traffic costs
    bare = predict([4, 6, 2], 3, (1, 1), m=m).seconds["elementwise"]
    m.data["activation_seconds_per_value"] = {"float64": {"sigmoid": 1e-6, "softmax": 1e-8}}
    timed = predict([4, 6, 2], 3, (1, 1), m=m).seconds["elementwise"]
    # the hidden layer's 18 sigmoid values outlast their pass (2·8·18 bytes at 1 GB/s);
    # the output's 6 softmax values do not (6e-8 s against 96e-9 s)
    assert timed - bare == pytest.approx(18 * 1e-6 - 2 * 8 * 18 / 1e9)
    assert m.activation_seconds("relu", 10, "float64") == 0.0
    assert m.activation_seconds("sigmoid", 10, "float32") == 0.0


def test_passes_that_fit_in_the_cache_use_its_bandwidth():
    data = {"format": machine_file.MACHINE_FORMAT, "bandwidth_bytes_per_s": 1e9,
            "memory_bytes_per_rank": 1e12, "gemm": [],
            "cache_bytes": 2**20, "cached_bandwidth_bytes_per_s": 4e9}
    m = machine_file.Machine(data)
    assert m.stream_seconds(2**20) == pytest.approx(2**20 / 4e9)
    assert m.stream_seconds(2**20 + 1) == pytest.approx((2**20 + 1) / 1e9)
    plain = machine_file.Machine({**data, "cache_bytes": None})
    assert plain.stream_seconds(1000) == pytest.approx(1000 / 1e9)


def test_between_two_fitted_lines_the_time_is_interpolated():
    lines = [{"from_bytes": 0, "alpha_s": 1 * US, "beta_s_per_byte": 1 * NS, "to_bytes": 1000},
             {"from_bytes": 3000, "alpha_s": 0.0, "beta_s_per_byte": 0.5 * NS}]
    seconds = lambda n: machine_file.collective_seconds("p2p", 2, n, lines, 0.0)
    assert seconds(1000) == pytest.approx(2 * US)                   # the first line
    assert seconds(3000) == pytest.approx(1.5 * US)                 # the second line
    assert seconds(2000) == pytest.approx(1.75 * US)                # halfway between
    del lines[0]["to_bytes"]                                        # no end: the first holds
    assert seconds(2000) == pytest.approx(3 * US)


def test_the_fused_row_pass_at_batch_1_makes_no_delta_gemm():
    # 512-512-512, float64: layer 1 (2 MiB of weights) makes its deltas in the update's sweep
    m = machine(rate=1e9)
    sizes = [512, 512, 512]
    gemms = 2 * 512 * 512 * 3 + 2 * 512 * 512 * 2               # forward 2, gradients 2, delta 1
    assert predict(sizes, 1, (1, 1), m=m).seconds["gemm"] == pytest.approx((gemms - 2 * 512 * 512) / 1e9)
    for other in ({"optimizer": optim.SGD(0.1, momentum=0.9)},
                  {"optimizer": optim.SGD(0.1, weight_decay=1e-4)}):
        assert predict(sizes, 1, (1, 1), m=m, **other).seconds["gemm"] == pytest.approx(gemms / 1e9)
    assert predict(sizes, 2, (1, 1), m=m).seconds["gemm"] == pytest.approx(2 * gemms / 1e9)
    assert predict(sizes, 2, (2, 1), m=m).seconds["gemm"] == pytest.approx(gemms / 1e9)
    small = [64, 64, 64]                                         # 32 KiB: below the pass's size
    assert predict(small, 1, (1, 1), m=m).seconds["gemm"] == pytest.approx(5 * 2 * 64 * 64 / 1e9)


def test_step_overheads_of_the_machine_file_join_the_compute():
    m = machine()
    m.data["step_overheads"] = {"one rank": {"step_s": 10 * US, "layer_s": 1 * US},
                                "dense": {"step_s": 20 * US, "layer_s": 2 * US},
                                "ghost": {"step_s": 30 * US, "layer_s": 3 * US},
                                "data": {"step_s": 40 * US, "layer_s": 1 * US},
                                "data shared": {"step_s": 50 * US, "layer_s": 1 * US}}
    expected = {((1, 1), "dense", 1): 10 + 4, ((1, 2), "dense", 1): 20 + 8,
                ((1, 4), "ghost", 4): 30 + 12, ((4, 1), "dense", 1): 40 + 4,
                ((2, 2), "dense", 1): 20 + 8 + 30}         # hybrid: + data's over one rank's
    for (grid, connectivity, blocks), us in expected.items():
        p = predict(S, 8, grid, connectivity, blocks, m=m)
        bare = predict(S, 8, grid, connectivity, blocks)
        assert p.seconds["overhead"] == pytest.approx(us * US)
        assert p.compute_s - bare.compute_s == pytest.approx(us * US)
    shared = plan.Candidate((4, 1), replica_update="shared")
    assert plan.predict(S, 8, shared, m, "float64").seconds["overhead"] == pytest.approx(54 * US)
    assert set(plan.overhead_kinds(4, one_node=True)) == set(m.data["step_overheads"])
    assert set(plan.overhead_kinds(4)) == set(m.data["step_overheads"]) - {"data shared"}
    assert set(plan.overhead_kinds(1, one_node=True)) == {"one rank"}


def test_the_level_2_cache_is_read_from_sysfs(tmp_path):
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "2M"), (3, "Unified", "32M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, value in (("level", level), ("type", kind), ("size", size)):
            (folder / name).write_text(f"{value}\n")
    (tmp_path / "uevent").write_text("")                   # not a cache: sysfs has it too
    assert calibrate.cache_bytes(str(tmp_path)) == 2 * 2**20
    assert calibrate.cache_bytes(str(tmp_path), level=None) == 32 * 2**20
    assert calibrate.cache_bytes(str(tmp_path / "missing")) is None



def test_the_last_level_cache_in_effect_is_the_largest_working_set_swept_faster_than_memory():
    MiB = 2**20
    # 8 and 16 MiB from the cache (26 GB/s), 64 MiB and more from memory (12 GB/s): as a
    # virtual machine reporting a 260 MiB cache shared with other tenants ran.
    sweeps = [[8 * MiB, 26e9], [16 * MiB, 26e9], [32 * MiB, 15e9], [64 * MiB, 12.4e9],
              [128 * MiB, 12e9]]
    assert calibrate.effective_cache_bytes(sweeps, 2 * MiB) == 16 * MiB     # 15 < 1.3 x 12
    sweeps[2][1] = 15.6e9                                                    # = 1.3 x 12
    assert calibrate.effective_cache_bytes(sweeps, 2 * MiB) == 32 * MiB
    flat = [[8 * MiB, 12.5e9], [16 * MiB, 12.2e9], [32 * MiB, 12e9]]
    assert calibrate.effective_cache_bytes(flat, 2 * MiB) == 2 * MiB         # none: the L2


# ------------------------------------------------------------------ enumeration

def brute_force(sizes, batch, ranks, blocks=None):
    out = set()
    for d, mm, master in itertools.product(range(1, ranks + 1), range(1, ranks + 1), (False, True)):
        if d * mm != ranks or d > batch or mm - master < 1:
            continue
        w = mm - master
        for connectivity, k in [("dense", 1)] + [("ghost", k) for k in {w, blocks or w} if k > 1]:
            try:
                check_layout(sizes, w, connectivity, k)
            except ValueError:
                continue
            out.add(plan.Candidate((d, mm), connectivity, k, master))
    return out


@pytest.mark.parametrize("sizes,batch,ranks,blocks,count", [
    (S, 32, 4, None, 8), (S, 32, 4, 8, 12), (S, 2, 4, None, 7), ([3, 2, 4], 8, 4, None, 3),
    (S, 64, 6, None, 12), ([5, 7, 3], 16, 1, None, 1), ([5, 8, 4], 16, 1, 2, 2)])
def test_every_valid_layout_is_enumerated_once(sizes, batch, ranks, blocks, count):
    found = plan.enumerate_layouts(sizes, batch, ranks, blocks)
    assert len(found) == len(set(found)) == count
    assert set(found) == brute_force(sizes, batch, ranks, blocks)
    for c in found:
        check_layout(sizes, c.workers, c.connectivity, c.blocks)


def test_enumeration_restricted_by_connectivity_and_master():
    dense = plan.enumerate_layouts(S, 32, 4, connectivity="dense")
    assert {c.connectivity for c in dense} == {"dense"}
    assert all(c.master for c in plan.enumerate_layouts(S, 32, 4, master=True))
    assert [str(c) for c in plan.enumerate_layouts(S, 32, 4, 8, "ghost", False)] == [
        "1 x 4 ghost K=4", "1 x 4 ghost K=8", "2 x 2 ghost K=2", "2 x 2 ghost K=8",
        "4 x 1 ghost K=8"]


# ------------------------------------------------------------------ the choice

def test_small_network_at_a_large_batch_goes_data_parallel():
    m = machine(rate=1e10, bandwidth=1e10)
    choice = plan.recommend(S, 1024, 4, m, connectivity="dense").layout
    assert choice.grid == (4, 1) and choice.options() == {
        "grid": (4, 1), "connectivity": "dense", "blocks": None, "master": False,
        "replica_update": "allreduce"}


def test_large_weights_at_a_small_batch_go_model_parallel():
    m = machine(rate=1e10, bandwidth=1e10)
    result = plan.recommend([1024, 4096, 1024], 8, 4, m, connectivity="dense")
    assert result.layout.grid == (1, 4) and not result.layout.master
    times = {p.layout.grid: p.total_s for p in result.table if not p.layout.master}
    assert times[(1, 4)] < times[(2, 2)] < times[(4, 1)]


def test_memory_limit_excludes_layouts():
    # a fast network and a nearly free allreduce: the replicated layout is fastest but holds
    # all 8.4 M weights and their gradients on every rank
    m = machine(rate=1e10, bandwidth=1e15, beta=1e-14)
    free = plan.recommend([1024, 4096, 1024], 8, 4, m, connectivity="dense")
    assert free.table[0].layout.grid == (4, 1)
    limited = plan.recommend([1024, 4096, 1024], 8, 4, m, connectivity="dense",
                             memory_per_rank=24 * 2**20)
    assert not limited.table[0].fits
    assert limited.layout == next(p.layout for p in limited.table if p.fits)
    assert limited.layout.grid == (1, 4)
    with pytest.raises(ValueError, match="fits in 1 MiB per rank"):
        plan.recommend([1024, 4096, 1024], 8, 4, m, memory_per_rank=2**20)


def test_without_communication_parameters_only_serial_layouts_are_predicted():
    m = machine(comm=False)
    with pytest.raises(machine_file.MissingParameters, match="mpiexec with 2 or more ranks"):
        plan.recommend(S, 32, 2, m)
    # ghost on one rank sends nothing either: its ring of one copies its own ghost rows
    result = plan.recommend([5, 8, 4], 16, 1, m, blocks=2)
    assert sorted(str(p.layout) for p in result.table) == ["1 x 1 dense", "1 x 1 ghost K=2"]
    assert result.unpredicted == []


# ------------------------------------------------------------------ files and command

def test_machine_files_load_and_predict(tmp_path, monkeypatch):
    for name in ("benchmarks/machines/bluegene_q.json", "benchmarks/results/machine_workbox.json"):
        m = machine_file.load_machine(str(ROOT / name))
        result = plan.recommend(bench.MODELS["M"], 1, 33, m, dtype="float64", master=True,
                                connectivity="ghost")
        assert result.layout == plan.Candidate((1, 33), "ghost", 32, True)
        assert 0 < result.table[0].total_s < 10
    monkeypatch.delenv(plan.MACHINE_VARIABLE, raising=False)
    with pytest.raises(ValueError, match="GHOSTMLP_MACHINE"):
        machine_file.load_machine()
    (tmp_path / "m.json").write_text(json.dumps({"format": "something else"}))
    monkeypatch.setenv(plan.MACHINE_VARIABLE, str(tmp_path / "m.json"))
    with pytest.raises(ValueError, match="not a ghostmlp-machine/1"):
        machine_file.load_machine()


def test_command_prints_every_layout_and_the_recommendation(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps(machine(rate=1e10, bandwidth=1e10).data))
    parser = argparse.ArgumentParser()
    plan.add_arguments(parser)
    lines = []
    plan.run(parser.parse_args(["--model", "S", "--batch", "64", "--ranks", "4",
                                "--machine", str(path)]), None, lines.append)
    assert len(lines) == 1 + 1 + len(plan.enumerate_layouts(S, 64, 4)) + 1
    assert lines[1].split()[:3] == ["layout", "samples", "connections"]
    assert lines[-1].startswith("recommended: ")
    with pytest.raises(ValueError, match="--sizes"):
        plan.run(parser.parse_args(["--machine", str(path)]), None, lines.append)


def test_calibration_on_one_rank_measures_compute_only():
    m = machine_file.Machine(calibrate.calibrate(quick=True))
    assert m.comm is None and m.data["ranks"] == 1 and m.data["notes"]
    assert {e["dtype"] for e in m.data["gemm"]} == {"float32", "float64"}
    assert m.bandwidth > 0 and m.memory_per_rank > m.baseline > 0
    assert all(e["flops_per_s"] > 0 for e in m.data["gemm"])
    assert set(m.data["step_overheads"]) == {"one rank"}
    assert set(m.data["activation_seconds_per_value"]["float32"]) == set(ACTIVATIONS)


def test_mpi_cases_at_two_ranks(tmp_path):
    command = [mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", "-m", "pytest", "-q",
               "-p", "no:cacheprovider", str(ROOT / "tests" / "mpi" / "cases_plan.py")]
    run(command, tmp_path)
