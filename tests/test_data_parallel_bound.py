"""benchmarks/data_parallel_bound.py: a round's runs, records and the report's arithmetic."""
import json
import os
import subprocess
import sys
from pathlib import Path

CHECKOUT = Path(__file__).resolve().parents[1]
# After site-packages: the repo root's ghostmlp/ source folder must not shadow the installed one.
sys.path.append(str(CHECKOUT))

from benchmarks import data_parallel_bound as bound  # noqa: E402


def test_a_round_runs_serial_the_bound_at_once_and_the_shared_grid(tmp_path):
    runs = bound._commands("mpiexec", "S", 9, 2, 3, tmp_path)
    (serial, _), = runs["serial"]
    (shared, _), = runs["shared"]
    assert serial[:3] == ["mpiexec", "-n", "1"] and serial[serial.index("--batch") + 1] == "9"
    assert shared[:3] == ["mpiexec", "-n", "2"] and "--grid" in shared
    assert shared[shared.index("--replica-update") + 1] == "shared"
    assert len(runs["bound"]) == 2      # the largest share, 5 of 9, on each of 2 lone ranks
    assert all(c[:3] == ["mpiexec", "-n", "1"] and c[c.index("--batch") + 1] == "5"
               for c, _ in runs["bound"])
    assert len({path for _, path in runs["bound"]}) == 2


def test_the_report_gives_medians_and_speed_ups_of_the_latest_sweep():
    def record(sweep, serial, bound_s, shared):
        return {"sweep": sweep, "model": "M", "batch": 256, "replicas": 2,
                "seconds": {"serial": serial, "bound": bound_s, "shared": shared}}
    records = [record("old", 9.0, 1.0, 1.0),
               record("new", 0.8, 0.5, 0.4), record("new", 0.6, 0.4, 0.4),
               record("new", 0.7, 0.35, 0.5)]
    text = bound.report(records)
    assert "3 rounds (sweep new)" in text
    assert "| serial, whole batch | 700.00 | 1.00 (1.00, 1.00, 1.00) |" in text
    assert "| 400.00 | 1.75 (1.60, 1.50, 2.00) |" in text        # the bound: 0.7 / 0.4
    assert "| 400.00 | 1.75 (2.00, 1.50, 1.40) |" in text        # shared


def test_one_round_end_to_end(tmp_path):
    results = tmp_path / "bound.jsonl"
    command = [sys.executable, "-m", "benchmarks.data_parallel_bound", "--model", "S",
               "--batch", "8", "--iterations", "3", "--rounds", "1", "--results", str(results)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=300,
                          env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (line,) = results.read_text().splitlines()
    seconds = json.loads(line)["seconds"]
    assert set(seconds) == set(bound.KINDS) and all(s > 0 for s in seconds.values())
    assert "grid (2, 1), shared replicas" in done.stdout
