"""Does the ghost topology over-fit as the number of blocks K grows? (the paper's section VI question)

Trains ghost networks with K = 1, 2, 4, 8 (and 16, see below) blocks, the dense network and
dense networks narrowed to the ghost networks' number of weights ("capacity-matched") on the
bundled 8x8 digits, over several initialisation seeds and train/test splits, with the
`ghostmlp train` recipe (cli_train.py). Writes one JSON line per run, then a markdown table
(stdout) and a plot from the JSON lines:

    python -m benchmarks.study_ghost_vs_dense [--seeds 5] [--splits 4] [--out docs/]
    python -m benchmarks.study_ghost_vs_dense --report-only [--out docs/]

Two output heads, because the library blocks the output layer too (every block needs a
neuron, so K <= n_out):
  head10  the task as is: 10 softmax outputs, one per class; K = 1, 2, 4, 8.
  head20  K = 16 needs >= 16 outputs: 20 softmax outputs, class c on neurons 2c and 2c+1
          (adjacent, so a class stays in one block or two neighbouring ones), target 1/2 on
          each, class probability = their sum. Run for K = 1, 2, 4, 8, 16 so that K = 16 is
          compared with the same head at every K, never with head10.
A ghost network with comm=None runs on one process (MPI.COMM_SELF); it depends on K only.
"""
import argparse
import json
import multiprocessing
import os
import shlex
import sys
import time
from pathlib import Path

from benchmarks.study_networks import HIDDEN, RECIPE, configs, run_one
from benchmarks.study_report import report

STEM = "ghost_vs_dense"


# ------------------------------------------------------------------ the runs

def _init_worker():
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)        # one BLAS thread per worker process: the workers share the cores


def code_state():
    """Which ghostmlp ran: its folder, the git commit and modified files there, the kernels' sha256."""
    import hashlib
    import subprocess
    import ghostmlp
    from ghostmlp import _kernels
    root = Path(ghostmlp.__file__).resolve().parents[1]

    def git(*args):
        try:
            return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True,
                                  timeout=30).stdout.strip() or None
        except (OSError, subprocess.SubprocessError):
            return None
    return {"ghostmlp_dir": str(root), "git_commit": git("rev-parse", "HEAD"),
            "git_modified": git("status", "--porcelain", "--untracked-files=no"),
            "kernels_sha256": hashlib.sha256(Path(_kernels.__file__).read_bytes()).hexdigest()}


def run_study(seeds, splits, epochs, jobs, path, command):
    todo = [(c, seed, split, epochs) for split in range(splits) for seed in range(seeds)
            for c in configs()]
    from benchmarks import machine
    meta = {"record": "meta", "command": command, "seeds": seeds, "splits": splits,
            "epochs": epochs, "jobs": jobs, "recipe": RECIPE, "hidden": list(HIDDEN),
            "runs": len(todo), "code": code_state(), "machine": machine.facts(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    print(f"{len(todo)} runs ({len(configs())} networks x {seeds} seeds x {splits} splits), "
          f"{jobs} process(es)", file=sys.stderr, flush=True)
    start = time.perf_counter()
    with open(path, "w") as out:
        out.write(json.dumps(meta) + "\n")
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(jobs, initializer=_init_worker) as pool:
            for done, record in enumerate(pool.imap(run_one, todo), 1):
                out.write(json.dumps(record) + "\n")
                out.flush()
                if done % 20 == 0 or done == len(todo):
                    print(f"  {done}/{len(todo)} runs, {time.perf_counter() - start:.0f} s",
                          file=sys.stderr, flush=True)
        wall = time.perf_counter() - start
        out.write(json.dumps({"record": "end", "wall_seconds": round(wall, 1)}) + "\n")
    print(f"study wall time {wall:.0f} s", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="initialisation/shuffle seeds 0..N-1 (default 5)")
    parser.add_argument("--splits", type=int, default=4, help="train/test splits 0..M-1 (default 4)")
    parser.add_argument("--epochs", type=int, default=60, help="epochs, step-decayed as by ghostmlp train (default 60)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="worker processes (default: the core count)")
    parser.add_argument("--out", default="docs/", help="folder for the .jsonl and .png (default docs/)")
    parser.add_argument("--report-only", action="store_true",
                        help="skip training: table and plot from the existing JSONL")
    args = parser.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    if not args.report_only:
        if args.seeds < 1 or args.splits < 1 or args.epochs < 1 or args.jobs < 1:
            parser.error("--seeds, --splits, --epochs and --jobs must be >= 1")
        command = "python -m benchmarks.study_ghost_vs_dense " + " ".join(map(shlex.quote, sys.argv[1:] if argv is None else argv))
        run_study(args.seeds, args.splits, args.epochs, args.jobs, Path(args.out) / f"{STEM}.jsonl",
                  command.strip())
    report(Path(args.out) / f"{STEM}.jsonl", Path(args.out) / f"{STEM}.png")


if __name__ == "__main__":
    main()
