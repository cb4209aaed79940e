"""benchmarks/step_speed.py: `case` prints one well-formed record, serially and under mpiexec; `compare` interleaves."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_mpi import mpiexec

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "step_speed.py"
TINY = ["--sizes", "3", "8", "6", "4", "--batch", "2", "--warmup", "2", "--timings", "2"]


def run(command, folder, orders=None):
    """Outside the checkout, as `compare` runs it: the installed ghostmlp, not the source tree."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=120,
                          env=env, input=orders)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done.stdout


def check_record(record, layout, ranks):
    assert record["layout"] == layout and record["ranks"] == ranks
    assert record["sizes"] == [3, 8, 6, 4] and record["batch"] == 2 and record["dtype"] == "float32"
    assert record["timings"] == 2 and len(record["times_us"]) == 2 and record["steps_per_timing"] >= 1
    assert 0 < record["min_us"] <= record["median_us"] <= record["max_us"]
    assert record["first_loss"] > 0
    assert "site-packages" in record["ghostmlp_file"]
    assert record["machine"]["cpu"] and all(b["threads"] == 1 for b in record["machine"]["blas"])
    assert "step_speed.py case" in record["case_command"]


def test_serial_case_prints_one_record(tmp_path):
    lines = run([sys.executable, str(SCRIPT), "case", *TINY], tmp_path).splitlines()
    assert len(lines) == 1
    check_record(json.loads(lines[0]), "serial", 1)


@pytest.mark.parametrize("layout", ["dense", "ghost"])
def test_parallel_case_prints_one_record_on_rank_0(layout, tmp_path):
    blocks = ["--blocks", "2"] if layout == "ghost" else []
    out = run([mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(SCRIPT), "case",
               "--layout", layout, *blocks, *TINY], tmp_path)
    lines = out.splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    check_record(record, layout, 2)
    assert record["blocks"] == (2 if layout == "ghost" else 1)
    assert record["case_command"].startswith("mpiexec -n 2 ")


def test_served_case_answers_each_order_on_rank_0(tmp_path):
    out = run([mpiexec(), "-n", "2", sys.executable, "-m", "mpi4py", str(SCRIPT), "case",
               "--serve", "--layout", "ghost", "--blocks", "2", "--steps", "3", *TINY], tmp_path,
              orders="time\ntime\nstop\n")
    ready, first, second, last = out.splitlines()
    record = json.loads(last)
    assert ready == "ready" and record["steps_per_timing"] == 3
    check_record(record, "ghost", 2)
    assert record["times_us"] == pytest.approx([float(first) * 1e6, float(second) * 1e6])


def test_compare_alternates_interpreters_and_writes_a_line_per_measurement(tmp_path):
    results = tmp_path / "compare.jsonl"
    out = run([sys.executable, str(SCRIPT), "compare", "--python", f"a={sys.executable}",
               "--python", f"b={sys.executable}", "--case", "serial-S-b1", "--rounds", "2",
               "--results", str(results)], tmp_path)
    records = [json.loads(line) for line in results.read_text().splitlines()]
    assert [(r["round"], r["label"]) for r in records] == [(0, "a"), (0, "b"), (1, "b"), (1, "a")]
    assert all(r["case"] == "serial-S-b1" and r["model"] == "S" and r["batch"] == 1
               for r in records)
    assert all(r["command"] == records[0]["command"] and "compare" in r["command"]
               for r in records)
    row = next(line for line in out.splitlines() if line.startswith("| serial-S-b1 "))
    assert row.endswith("| same |")          # one network, one first-step loss
