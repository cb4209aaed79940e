"""The benchmark harness's --quick profile under mpiexec: it runs and writes valid JSON lines."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from test_mpi import mpiexec

CHECKOUT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("ranks", [1, 2])
def test_quick_profile_writes_valid_records(ranks, tmp_path):
    results = tmp_path / "quick.jsonl"
    command = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m",
               "benchmarks.harness", "--quick", "--json", str(results)]
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1")
    done = subprocess.run(command, cwd=CHECKOUT, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    records = [json.loads(line) for line in results.read_text().splitlines()]
    train = [r for r in records if r["kind"] == "train"]
    assert [r["connectivity"] for r in train] == ["dense", "ghost"]
    for record in train:
        assert record["ranks"] == ranks and record["batch"] == 8 and record["iterations"] == 3
        assert record["sizes"] == [3, 64, 128, 256, 64]
        t = record["seconds_per_iteration"]
        assert 0 < t["min"] <= t["median"] <= t["max"]
        assert record["samples_per_second"] == pytest.approx(8 / t["median"])
        assert len(record["peak_rss_bytes"]) == len(record["weight_bytes"]) == ranks
        assert 0 <= record["comm_percent"] <= 100
    ghost = train[1]
    assert ghost["blocks"] == ranks
    if ranks > 1:
        assert ghost["connections"] < train[0]["connections"] == 57536
        assert ghost["messages_per_rank"] == 2 * 3 * 2       # 3 blocked hidden layers
    compared = [r for r in records if r["kind"] == "compare"]
    assert len(compared) == 1 and compared[0]["batch"] == 1 and compared[0]["ghostmlp_s"] > 0
