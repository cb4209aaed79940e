"""benchmarks/scaling*.py: planning, the paper-style tables and the plot, on hand-made records (no MPI)."""
import sys
from pathlib import Path

import pytest

from ghostmlp.partition import check_layout


# After site-packages: the repo root's ghostmlp/ source folder must not shadow the installed one.
sys.path.append(str(Path(__file__).resolve().parents[1]))

from benchmarks import scaling, scaling_plot, scaling_records, scaling_tables  # noqa: E402

MACHINE = {"cpu": "Test CPU 9000", "cores": 2, "memory_gib": 16.0,
           "blas_provider": {"provider": "numpy", "file": "/x/libscipy_openblas64_.so", "ilp64": True,
                             "api": "openblas", "version": "0.3.31", "architecture": "Haswell",
                             "threads": 1}}
SIZES = {"S": [3, 64, 128, 256, 64], "M": [2048, 4096, 4096, 4096, 2048],
         "L": [2048, 4096, 1024, 512, 2048]}     # L with --scale 0.125


def rec(model="S", workers=1, master=False, seconds=1.0, connectivity="dense", blocks=None,
        comm_max=0.0, comm_mean=0.0, comm_percent=0.0, connections=1000, sweeps=None, batch=4):
    blocks = 1 if connectivity == "dense" else (workers if blocks is None else blocks)
    r = {"kind": "train", "ranks": workers + master, "working_ranks": workers, "master": master,
         "model": model, "scale": 0.125 if model == "L" else 1.0, "sizes": SIZES[model],
         "connectivity": connectivity, "blocks": blocks, "connections": connections,
         "batch": batch, "dtype": "float32", "iterations": 10, "warmup": 2,
         "seconds_per_iteration": {"median": seconds, "min": seconds, "max": seconds},
         "comm_seconds": {"max": comm_max, "mean": comm_mean}, "comm_percent": comm_percent,
         "machine": MACHINE, "mpi": "MPICH Version:   5.0.2\nMPICH Release date: x"}
    if sweeps:
        r["sweeps"] = sweeps
    return r


def meta_of(records):
    return scaling_tables.group_meta(records)


def table_rows(markdown):
    """The body rows of the first Markdown table in `markdown`, as lists of cells."""
    lines = markdown.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("|"))
    table = []
    for line in lines[start:]:
        if not line.startswith("|"):
            break
        table.append(line)
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in table[2:]]


def section(markdown, title, next_marker="### "):
    """The text of the section whose heading contains `title`, up to the next heading."""
    start = markdown.index(title)
    end = markdown.find(next_marker, start + len(title))
    return markdown[start:] if end < 0 else markdown[start:end]


# ------------------------------------------------------------------ Table II: speed-ups

def test_table_ii_speedups_against_smallest_run():
    records = [rec(workers=1, seconds=0.8), rec(workers=2, seconds=0.5),
               rec(workers=4, seconds=0.1)]
    rows = table_rows(scaling_tables.table_ii(records, meta_of(records)))
    assert [row[0] for row in rows] == ["1", "2", "4"]
    assert [row[1] for row in rows] == ["0.8000", "0.5000", "0.1000"]
    assert [row[2] for row in rows] == ["1.00", "1.60", "8.00"]      # 0.8/0.5, 0.8/0.1
    assert [row[3] for row in rows] == ["1,000"] * 3


def test_master_rows_labelled_and_measured_against_one_worker_plus_master():
    records = [rec(workers=1, seconds=1.0), rec(workers=2, seconds=0.4),
               rec(workers=1, master=True, seconds=1.2), rec(workers=2, master=True, seconds=0.3)]
    rows = table_rows(scaling_tables.table_ii(records, meta_of(records), cores=2))
    assert [row[0] for row in rows] == ["1", "2 (1 + master)", "2", "3 (2 + master) *"]
    # plain rows: against 1 rank; master rows: against 1 worker + 1 master ("2 ranks = sequential")
    assert [row[2] for row in rows] == ["1.00", "1.00", "2.50", "4.00"]


def test_rows_ordered_by_ranks_whatever_the_input_order():
    records = [rec(workers=8, seconds=0.125), rec(workers=2, master=True, seconds=0.6),
               rec(workers=1, seconds=1.0), rec(workers=4, seconds=0.25),
               rec(workers=2, seconds=0.5)]
    rows = table_rows(scaling_tables.table_ii(records, meta_of(records)))
    assert [row[0] for row in rows] == ["1", "2", "3 (2 + master)", "4", "8"]
    assert [row[2] for row in rows] == ["1.00", "2.00", "1.00", "4.00", "8.00"]


def test_equal_total_ranks_put_fewer_workers_first():
    records = [rec(workers=2, seconds=0.5), rec(workers=1, master=True, seconds=1.0),
               rec(workers=1, seconds=0.9)]
    rows = table_rows(scaling_tables.table_ii(records, meta_of(records)))
    assert [row[0] for row in rows] == ["1", "2 (1 + master)", "2"]


def test_speedups_function_keys_by_record():
    a, b = rec(workers=1, seconds=3.0), rec(workers=3, seconds=1.0)
    c = rec(workers=1, master=True, seconds=2.0)
    up = scaling_tables.speedups([b, c, a])
    assert up[id(a)] == 1.0 and up[id(b)] == 3.0 and up[id(c)] == 1.0


# ------------------------------------------------------------------ Table III and IV

def test_table_iii_joins_m_and_l_by_layout():
    m = [rec("M", 1, seconds=2.0, connections=50_331_648), rec("M", 2, seconds=1.1)]
    l = [rec("L", 1, seconds=0.03, connections=2_621_440), rec("L", 2, master=True, seconds=0.02)]
    rows = table_rows(scaling_tables.table_iii(m, l, meta_of(m + l)))
    assert rows == [
        ["1", "1", "2.000", "0.03000", "50,331,648", "2,621,440"],
        ["1", "2", "1.100", "—", "1,000", "—"],
        ["1", "3 (2 + master)", "—", "0.02000", "—", "1,000"],
    ]


def test_table_iv_columns_from_comm_seconds_and_comm_percent():
    records = [rec("L", 2, seconds=0.02, comm_max=0.005, comm_mean=0.004, comm_percent=25.0),
               rec("L", 1, seconds=0.03),
               rec("L", 4, master=True, seconds=0.01, comm_max=0.0061, comm_mean=0.0012345,
                   comm_percent=61.04)]
    md = scaling_tables.table_iv(records, meta_of(records))
    assert md.splitlines()[0] == "| ranks | Max CPI (s) | Avg CPI (s) | % time in communication |"
    assert table_rows(md) == [["1", "0", "0", "0.0"],
                              ["2", "0.005000", "0.004000", "25.0"],
                              ["5 (4 + master)", "0.006100", "0.001234", "61.0"]]


def test_empty_tables_are_none():
    assert scaling_tables.table_ii([], {}) is None
    assert scaling_tables.table_iii([], [], {}) is None
    assert scaling_tables.table_iv([], {}) is None


def test_header_states_machine_sizes_scale_batch_dtype_and_iteration():
    records = [rec("M", 1), rec("L", 1)]
    header = scaling_tables.table_header(meta_of(records), ["M", "L"])
    assert header.splitlines()[0] == (
        "> Machine: Test CPU 9000, 2 cores, 16.0 GiB, BLAS numpy: openblas 0.3.31 (Haswell, "
        "ILP64, 1 thread(s)), libscipy_openblas64_.so; MPI: MPICH Version: 5.0.2  ")
    assert "M = 2048-4096-4096-4096-2048 (scale 1); L = 2048-4096-1024-512-2048 (scale 0.125)" in header
    assert "Batch 4, float32; median of 10 timed iterations after 2 warm-up" in header
    assert ("iteration = one forward + loss + backward + update over one minibatch of 4 samples"
            in header)


# ------------------------------------------------------------------ whole document

def full_records():
    return [
        # ghost, K = working ranks: 1 (K=1) and 2 (K=2); the K=2 run is also the fixed-K=2 run
        rec("S", 1, seconds=1.0, connectivity="ghost", blocks=1, sweeps=["ghost K=ranks"]),
        rec("S", 2, seconds=0.25, connectivity="ghost", blocks=2,
            sweeps=["ghost K=ranks", "ghost fixed K=2"]),
        rec("S", 1, seconds=0.6, connectivity="ghost", blocks=2, sweeps=["ghost fixed K=2"]),
        rec("S", 1, seconds=2.0, sweeps=["dense"]),
        rec("S", 2, seconds=1.6, sweeps=["dense"]),
        rec("L", 1, seconds=0.03, sweeps=["dense"]),
        rec("L", 2, seconds=0.02, comm_max=0.002, comm_mean=0.001, comm_percent=10.0,
            sweeps=["dense"]),
    ]


def test_sweeps_kept_separate_with_their_own_speedups():
    md = scaling_tables.render_markdown(full_records())
    k_ranks = section(md, "### Sweep: ghost, K = working ranks")
    fixed = section(md, "### Sweep: ghost, fixed K = 2")
    dense = section(md, "### Sweep: dense")
    assert md.index("K = working ranks") < md.index("fixed K = 2") < md.index("Sweep: dense")
    assert table_rows(k_ranks) == [["1", "1.000", "1.00", "1,000"], ["2", "0.2500", "4.00", "1,000"]]
    # the shared K=2 run appears in the fixed-K sweep too, against that sweep's own 1-rank run
    assert table_rows(fixed) == [["1", "0.6000", "1.00", "1,000"], ["2", "0.2500", "2.40", "1,000"]]
    assert table_rows(dense) == [["1", "2.000", "1.00", "1,000"], ["2", "1.600", "1.25", "1,000"]]
    # L ran only dense: its Tables III and IV are in the dense section alone
    assert "0.03000" not in k_ranks and "0.03000" not in fixed
    iv = section(dense, "**Table IV", next_marker="\n**")
    assert table_rows(iv) == [["1", "0", "0", "0.0"], ["2", "0.002000", "0.001000", "10.0"]]
    assert "No runs." in section(k_ranks, "**Table IV", next_marker="###")


def test_every_table_has_its_header():
    md = scaling_tables.render_markdown(full_records())
    tables = md.count("\n| ranks |") + md.count("\n| nodes |")
    assert tables == 5          # S in 3 sweeps, L's Tables III and IV in the dense sweep
    assert md.count("> iteration = one forward + loss + backward + update over one minibatch "
                    "of 4 samples") == 5
    assert md.count("> Machine: Test CPU 9000, 2 cores, 16.0 GiB") == 5


def test_untagged_records_fall_into_sweeps_by_layout():
    assert scaling_records.sweeps_of(rec(connectivity="dense")) == ["dense"]
    assert scaling_records.sweeps_of(rec(workers=4, connectivity="ghost", blocks=4)) == ["ghost K=ranks"]
    assert scaling_records.sweeps_of(rec(workers=2, connectivity="ghost", blocks=8)) == ["ghost fixed K=8"]
    assert scaling_records.sweeps_of(rec(sweeps=["ghost K=ranks", "ghost fixed K=2"])) == [
        "ghost K=ranks", "ghost fixed K=2"]


def test_latest_line_of_a_layout_wins_and_failures_are_listed():
    failed = {"kind": "train-failed", "model": "S", "scale": 1.0, "ranks": 2, "working_ranks": 2,
              "master": False, "connectivity": "dense", "blocks": 1, "batch": 4,
              "dtype": "float32", "sweeps": ["dense"], "returncode": 1, "timed_out": False,
              "error": "Traceback ...\nRuntimeError: boom", "command": "mpiexec -n 2 ..."}
    skipped = {"kind": "train-skipped", "model": "S", "scale": 1.0, "ranks": 3, "working_ranks": 2,
               "master": True, "connectivity": "ghost", "blocks": 3, "batch": 4,
               "dtype": "float32", "sweeps": ["ghost fixed K=3"],
               "reason": "K=3 blocks is not a multiple of the 2 working ranks"}
    old = rec("S", 2, seconds=9.0, sweeps=["dense"])
    new = rec("S", 2, seconds=1.0, sweeps=["dense"])
    records = [rec("S", 1, seconds=2.0, sweeps=["dense"]), old, failed, skipped]
    md = scaling_tables.render_markdown(records)
    dense = section(md, "### Sweep: dense")
    assert table_rows(dense) == [["1", "2.000", "1.00", "1,000"]]
    assert ("- FAILED: S at 2 ranks: exit status 1: RuntimeError: boom (`mpiexec -n 2 ...`)"
            in dense)
    assert ("- skipped: S at 3 (2 + master) ranks: K=3 blocks is not a multiple of the 2 "
            "working ranks") in md
    # a rerun that succeeds replaces the failure
    md = scaling_tables.render_markdown(records + [new])
    dense = section(md, "### Sweep: dense")
    assert table_rows(dense) == [["1", "2.000", "1.00", "1,000"], ["2", "1.000", "2.00", "1,000"]]
    assert "FAILED" not in md


def test_rerun_keeps_the_sweeps_of_the_line_it_replaces():
    first = rec("S", 2, seconds=0.5, connectivity="ghost", blocks=2,
                sweeps=["ghost K=ranks", "ghost fixed K=2"])
    rerun = rec("S", 2, seconds=0.4, connectivity="ghost", blocks=2, sweeps=["ghost K=ranks"])
    (kept,) = scaling_records.latest_by_layout([first, rerun])
    assert kept["seconds_per_iteration"]["median"] == 0.4
    assert kept["sweeps"] == ["ghost K=ranks", "ghost fixed K=2"]


# ------------------------------------------------------------------ planning

def test_default_ranks_are_powers_of_two_up_to_the_cores():
    assert scaling.default_ranks(1) == [1]
    assert scaling.default_ranks(2) == [1, 2]
    assert scaling.default_ranks(6) == [1, 2, 4]
    assert scaling.default_ranks(16) == [1, 2, 4, 8, 16]


def test_plan_shares_the_run_where_k_equals_the_working_ranks():
    plan = scaling.plan_runs(["S", "L"], [1, 2], fixed_blocks=2, scale_l=0.125)
    assert len(plan) == 2 * 2 * 5     # models x (plain, +master) x (3 runs at 1 rank + 2 at 2)
    s_plain = [(r["connectivity"], r["blocks"], r["working_ranks"], r["sweeps"])
               for r in plan if r["model"] == "S" and not r["master"]]
    assert s_plain == [("dense", 1, 1, ["dense"]), ("ghost", 1, 1, ["ghost K=ranks"]),
                       ("ghost", 2, 1, ["ghost fixed K=2"]), ("dense", 1, 2, ["dense"]),
                       ("ghost", 2, 2, ["ghost K=ranks", "ghost fixed K=2"])]
    masters = [r for r in plan if r["master"]]
    assert all(r["ranks"] == r["working_ranks"] + 1 for r in masters) and len(masters) == 10
    assert {r["scale"] for r in plan if r["model"] == "L"} == {0.125}
    assert {r["scale"] for r in plan if r["model"] == "S"} == {1.0}
    assert len(scaling.plan_runs(["S"], [1, 2], 2, 0.125, master=False)) == 5


def test_layout_problem_is_check_layouts_verdict():
    s = SIZES["S"]
    for sizes, workers, connectivity, blocks in [(s, 4, "ghost", 2), (s, 128, "dense", 1),
                                                 (s, 1, "ghost", 128), ([4, 3, 8], 1, "ghost", 2)]:
        with pytest.raises(ValueError) as refused:
            check_layout(sizes, workers, connectivity, blocks)
        assert scaling.layout_problem(sizes, workers, connectivity, blocks) == str(refused.value)
    assert scaling.layout_problem(s, 2, "ghost", 4) is None
    assert scaling.layout_problem([4, 4, 8], 2, "ghost", 2) is None


def test_memory_problem_counts_weights_and_biases():
    # S: (3+1)*64 + (64+1)*128 + (128+1)*256 + (256+1)*64 = 58,048 parameters
    assert scaling.weight_bytes(SIZES["S"], "float32") == 4 * 58_048
    assert scaling.weight_bytes(SIZES["S"], "float64") == 8 * 58_048
    need = scaling.weight_bytes(SIZES["M"], "float32")          # 201,363,456 bytes
    assert need == 4 * ((2048 + 1) * 4096 + 2 * (4096 + 1) * 4096 + (4096 + 1) * 2048)
    assert scaling.memory_problem(SIZES["M"], "float32", need / 0.8 + 1) is None
    assert scaling.memory_problem(SIZES["M"], "float32", 2**30 // 5) == (
        "its weights alone need 0.2 GiB, more than 80% of the 0.2 GiB available")
    assert scaling.memory_problem(SIZES["M"], "float32", None) is None


def test_harness_command():
    run = {"model": "L", "scale": 0.125, "ranks": 3, "working_ranks": 2, "master": True,
           "grid": [1, 3], "connectivity": "ghost", "blocks": 4}
    cmd = scaling.harness_command(run, "/x/mpiexec", 1, 20, 3, "float32", "/tmp/r.jsonl",
                                  python="/x/python")
    assert cmd == ["/x/mpiexec", "-n", "3", "/x/python", "-m", "benchmarks.harness", "train",
                   "--model", "L", "--scale", "0.125", "--connectivity", "ghost", "--blocks", "4",
                   "--master", "--batch", "1", "--iterations", "20", "--warmup", "3",
                   "--dtype", "float32", "--json", "/tmp/r.jsonl"]
    dense = dict(run, model="S", scale=1.0, ranks=1, working_ranks=1, master=False,
                 connectivity="dense", blocks=1)
    cmd = scaling.harness_command(dense, "mpiexec", 8, 5, 1, "float64", "out", python="py")
    assert cmd[:10] == ["mpiexec", "-n", "1", "py", "-m", "benchmarks.harness", "train",
                        "--model", "S", "--connectivity"]
    assert "--scale" not in cmd and "--blocks" not in cmd and "--master" not in cmd


def test_fmt_seconds_four_significant_digits():
    assert scaling_tables.fmt_seconds(0.012346) == "0.01235"
    assert scaling_tables.fmt_seconds(1.5e-5) == "0.00001500"
    assert scaling_tables.fmt_seconds(12.3456) == "12.35"
    assert scaling_tables.fmt_seconds(0) == "0"
    assert scaling_tables.fmt_seconds(float("nan")) == "—"


# ------------------------------------------------------------------ plot and --tables-only

def test_missing_matplotlib_skips_the_plot(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "matplotlib", None)     # `import matplotlib` raises
    assert scaling_plot.plot_fig4(full_records(), tmp_path / "fig4.png") is None
    assert not (tmp_path / "fig4.png").exists()
    assert "matplotlib is not available" in capsys.readouterr().err


def test_tables_only_without_matplotlib(monkeypatch, tmp_path):
    import json
    jsonl = tmp_path / "in.jsonl"
    jsonl.write_text("".join(json.dumps(r) + "\n" for r in full_records()))
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    out = tmp_path / "out"
    assert scaling.main(["--tables-only", str(jsonl), "--out", str(out)]) == 0
    md = (out / "scaling.md").read_text()
    assert table_rows(section(md, "### Sweep: dense"))[1] == ["2", "1.600", "1.25", "1,000"]
    assert not (out / "fig4.png").exists()


def test_plot_written_when_matplotlib_imports(tmp_path):
    path = scaling_plot.plot_fig4(full_records(), tmp_path / "fig4.png")
    assert path == tmp_path / "fig4.png"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_replicated_sweeps_run_on_grids():
    plan = scaling.plan_runs(["S"], [1, 2], fixed_blocks=2, scale_l=1.0, master=False, replicas=2)
    assert [(r["ranks"], r["grid"]) for r in plan] == [(2, [2, 1])] * 3 + [(4, [2, 2])] * 2
    assert plan[0]["sweeps"] == ["dense x2 replicas"]
    cmd = scaling.harness_command(plan[-1], "mpiexec", 1, 2, 1, "float32", "out", python="py")
    assert cmd[2] == "4" and cmd[cmd.index("--grid") + 1] == "2x2"
    assert "data parallel" in scaling_records.sweep_title(plan[0]["sweeps"][0])
    record = {"kind": "train", "connectivity": "dense", "grid": [2, 1], "working_ranks": 1}
    assert scaling_records.sweeps_of(record) == ["dense x2 replicas"]
    assert scaling_records.sweep_order("dense x2 replicas") > scaling_records.sweep_order("dense")
