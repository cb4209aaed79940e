"""The comparison's Markdown report: the machine, its limits, step times and ratios, the targets."""
from benchmarks.compare_measure import BLOCK_SECONDS, ITERATION, LIMIT_REPEATS
from ghostmlp.bench import LEARNING_RATE, blas_label


def _ms(seconds):
    if seconds is None:
        return "—"
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def _x(ratio):
    if ratio is None:
        return "—"
    return f"{ratio:.3f}" if ratio < 1 else f"{ratio:.2f}" if ratio < 100 else f"{ratio:,.0f}"


def report(records, gemm, limits, facts, torch_config, torch_missing, scale, dtype, command,
           out=print):
    gemm_name = "sgemm" if dtype == "float32" else "dgemm"
    out("# ghostmlp vs numpy vs PyTorch: one training step, one thread\n")
    out(f"iteration = {ITERATION}; dtype {dtype}; sigmoid hidden layers, softmax output, loss "
        f"mse, SGD lr {LEARNING_RATE:g}; one thread (threadpoolctl limit 1, "
        f"torch.set_num_threads(1)); scale {scale:g} (hidden layer sizes multiplied by it).\n")
    out(f"Command: `{command}`\n")
    out("## Machine\n")
    out(f"- CPU: {facts['cpu']} (SIMD flags: {facts['cpu_simd']}); cores: {facts['cores']}; "
        f"caches (cpu0): {facts['caches_cpu0']}; memory: {facts['memory_gib']} GiB; load "
        f"average at start: {', '.join(map(str, facts['load_average']))}")
    out(f"- BLAS the kernels call: {blas_label(facts)}")
    for lib in facts["blas"]:
        out(f"- BLAS loaded: {lib['library']} {lib['version']}, core type {lib['architecture']}, "
            f"{lib['threads']} thread(s) ({lib['threading_layer']}), {lib['file']}")
    out(f"- Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']}, ghostmlp "
        f"{facts['ghostmlp']}; OPENBLAS_CORETYPE = {facts['OPENBLAS_CORETYPE']}, "
        f"OPENBLAS_L2_SIZE = {facts['OPENBLAS_L2_SIZE']}")
    out(f"- PyTorch: {torch_config}" if torch_config else
        f"- PyTorch: not available ({torch_missing}); its columns are empty")
    mpi = facts.get("mpi")
    out(f"- MPI: {' '.join(mpi.splitlines()[0].split()) if mpi else 'mpi4py not importable'}\n")
    out("## Machine limits, measured in this run (one thread, best of "
        f"{LIMIT_REPEATS})\n")
    out(f"- {gemm_name}: " + "; ".join(f"{r['shape']} {r['gflops']:.1f}" for r in gemm)
        + f" GFLOP/s; reference rate (best) {max(r['gflops'] for r in gemm):.1f} GFLOP/s")
    if limits:
        out(f"- memory bandwidth ({limits['bytes'] / 2**20:.0f} MiB arrays): copy "
            f"{limits['copy_gbs']:.1f} GB/s, read {limits['read_gbs']:.1f} GB/s, in-place "
            f"{limits['inplace_gbs']:.1f} GB/s")
    out("")
    out("## Seconds per iteration (medians) and ratios\n")
    out(f"| model | sizes | batch | ghostmlp ms | numpy ms | torch ms | {gemm_name} time ms "
        "| memory floor ms | ghostmlp / numpy | ghostmlp / torch | ghostmlp / "
        f"{gemm_name} time | efficiency % | ghostmlp / memory floor |")
    out("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in records:
        out(f"| {r['model']} | {'-'.join(map(str, r['sizes']))} | {r['batch']} | "
            f"{_ms(r['ghostmlp_s'])} | {_ms(r['numpy_s'])} | {_ms(r['torch_s'])} | "
            f"{_ms(r['sgemm_equivalent_s'])} | {_ms(r['memory_floor_s'])} | "
            f"{_x(r['ratio_numpy'])} | {_x(r['ratio_torch'])} | {_x(1 / r['efficiency'])} | "
            f"{100 * r['efficiency']:.1f} | {_x(r['ratio_memory_floor'])} |")
    out("")
    if records:
        out(f"- The three implementations run in the same process on the same model, "
            f"minibatches and initial weights; {records[0]['iterations']} timings each after "
            f"{records[0]['warmup']} warm-up step(s), interleaved in rounds (rotating order). "
            f"Steps shorter than {BLOCK_SECONDS * 1e3:g} ms are timed in blocks of consecutive "
            "steps (after one untimed step) and divided; steps per timing: "
            + "; ".join(f"{r['model']}/{r['batch']}: "
                        + ", ".join(f"{k} {v}" for k, v in r["steps_per_timing"].items())
                        for r in records) + ".")
        out(f"- {gemm_name} time = 6 x weights x batch flops at the reference rate; efficiency "
            f"= {gemm_name} time / ghostmlp step. Memory floor (batch 1) = 3 passes over the "
            "weight bytes at the copy bandwidth (a DRAM floor: weights that fit in the caches "
            "are not bound by it).")
        out("- numpy: straightforward `a = sigmoid(a @ W + b)` forward, softmax, MSE gradient "
            "through the softmax Jacobian, backprop, in-place SGD. PyTorch: nn.Linear + "
            "nn.Sigmoid, nn.Softmax(dim=1), nn.MSELoss on one-hot targets, optim.SGD; "
            "zero_grad, forward, loss, backward, step.")
        out("- First-step losses (ghostmlp's convention) "
            + ("agree" if all(r["losses_agree"] for r in records) else "DISAGREE")
            + ": " + "; ".join(f"{r['model']}/{r['batch']}: " + ", ".join(
                f"{k} {v:.6g}" for k, v in r["first_step_loss"].items()) for r in records) + ".")
        out("")
    targeted = [r for r in records if r["target"]]
    if targeted:
        out("## Targets\n")
        out("| target | ghostmlp / torch | status |")
        out("|---|---:|---|")
        for r in targeted:
            met = r["target"]["met"]
            out(f"| {r['target']['description']} | {_x(r['ratio_torch'])} | "
                f"{'no torch' if met is None else 'met' if met else 'MISSED'} |")
        out("")
