"""The kernel benchmark's Markdown report: the machine, its limits, the step, the targets, the fused path."""
from benchmarks.kernels_fused import takes_fused_path
from benchmarks.kernels_step import HEADER, NO_FUSED_WEIGHT_DECAY, S_GROUP, S_WARMUP
from ghostmlp import _kernels
from ghostmlp.bench import MODELS, blas_label

TARGETS = [  # (model, batch, metric, comparison, bound, description)
    ("M", 256, "efficiency", ">=", 0.95, "M batch 256: efficiency >= 95 %"),
    ("M", 1, "ratio_to_floor", "<=", 1.3, "M batch 1: step time <= 1.3 x memory floor"),
    ("S", 1, "median_s", "<=", 20e-6, "S batch 1: median step <= 20 us"),
]


def _fmt(x, spec, none="—"):
    return none if x is None else format(x, spec)


def _ms(seconds):
    """Milliseconds with enough significant digits for both 10 us and 1 s."""
    ms = seconds * 1e3
    return f"{ms:.4f}" if ms < 0.1 else f"{ms:.3f}" if ms < 100 else f"{ms:.1f}"


def _us(seconds):
    return f"{seconds * 1e6:.2f}" if seconds < 1e-3 else f"{seconds * 1e6:,.0f}"


def print_report(facts, command, limits, sgemm, cases, fused_rows, quick):
    p = print
    p("# ghostmlp kernel benchmark: one training step\n")
    p(f"{HEADER}.\n")
    p(f"Command: `{command}`\n")
    p("## Machine\n")
    p(f"- CPU: {facts['cpu']} (SIMD flags: {facts['cpu_simd']}); cores (os.cpu_count): "
      f"{facts['cores']}; caches (cpu0): {facts['caches_cpu0']}; memory: "
      f"{facts['memory_gib']} GiB; load average at start: "
      f"{', '.join(map(str, facts['load_average']))}")
    p(f"- BLAS the kernels and the sgemm reference call: {blas_label(facts)}")
    for lib in facts["blas"]:
        p(f"- BLAS loaded: {lib['library']} {lib['version']}, core type {lib['architecture']}, "
          f"{lib['threads']} thread(s) ({lib['threading_layer']}), {lib['file']}")
    p(f"- Python {facts['python']}, numpy {facts['numpy']}, scipy {facts['scipy']} "
      f"ghostmlp {facts['ghostmlp']}, "
      f"FUSED_ROW_MIN_BYTES = {facts['FUSED_ROW_MIN_BYTES']}")
    p(f"- OPENBLAS_CORETYPE = {facts['OPENBLAS_CORETYPE']}, "
      f"OPENBLAS_L2_SIZE = {facts['OPENBLAS_L2_SIZE']}\n")
    p("## Machine limits, measured in this run (one thread, best of N)\n")
    for r in sgemm:
        p(f"- sgemm {r['shape']} ({r['gflop']:.1f} GFLOP): {r['gflops']:.1f} GFLOP/s")
    p(f"- reference sgemm rate (best of the above): {limits['sgemm_gflops']:.1f} GFLOP/s")
    p(f"- memory bandwidth on {limits['bytes'] / 2**20:.0f} MiB float32 arrays: copy "
      f"`np.copyto(b, a)` {limits['copy_gbs']:.1f} GB/s (read + write bytes counted), read-only "
      f"`sdot(a, a)` {limits['read_gbs']:.1f} GB/s, in-place `np.add(a, 0, out=a)` "
      f"{limits['inplace_gbs']:.1f} GB/s (read + write)\n")
    p("## Training step\n")
    p("| model | batch | median ms/step | min | max | samples/s | conn. updates/s (G) "
      "| sgemm-equivalent ms | efficiency % | memory floor ms | ratio to floor |")
    p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in cases:
        p(f"| {c['model']} | {c['batch']} | {_ms(c['median_s'])} | {_ms(c['min_s'])} | "
          f"{_ms(c['max_s'])} | {c['samples_per_s']:,.0f} | {c['conn_updates_per_s'] / 1e9:.2f} | "
          f"{_ms(c['sgemm_equivalent_s'])} | {100 * c['efficiency']:.1f} | "
          f"{_fmt(c['memory_floor_s'] and c['memory_floor_s'] * 1e3, '.3f')} | "
          f"{_fmt(c['ratio_to_floor'], '.2f')} |")
    p("")
    p(f"- M = {'-'.join(map(str, MODELS['M']))} ({cases_weights('M'):,} weights), "
      f"S = {'-'.join(map(str, MODELS['S']))} ({cases_weights('S'):,} weights).")
    p("- M: warm-up steps, then single steps timed one by one (min/max over those); "
      f"S: {S_WARMUP} warm-up steps, then groups of {S_GROUP} steps timed together "
      "(min/max over the groups' per-step means). Timed counts: "
      + ", ".join(f"{c['model']}/{c['batch']}: {c['timed']} x {c['steps_per_timing']}" for c in cases)
      + ".")
    p("- sgemm-equivalent time = 6 x weights x batch flops / reference sgemm rate; "
      "efficiency = sgemm-equivalent time / median step time.")
    p("- memory floor (batch 1) = 3 passes over the weight bytes (read forward, read + write "
      "in backward/update) / copy bandwidth; ratio to floor = median step / floor. The same "
      "floor from the read-only and in-place bandwidths (W/read + 2W/in-place): "
      + ", ".join(f"{c['model']}: {c['memory_floor_read_rw_s'] * 1e3:.3f} ms, ratio "
                  f"{c['ratio_to_floor_read_rw']:.2f}, effective {c['effective_gbs']:.1f} GB/s"
                  for c in cases if c["batch"] == 1) + ". These are DRAM floors: weights "
      "that fit in the caches (S: "
      f"{4 * cases_weights('S') / 2**10:.0f} KiB) are not bound by them.")
    for c in cases:
        if c.get("step_gemms_s"):
            p(f"- {c['model']} batch {c['batch']}: the step's own sgemm calls alone (same shapes "
              f"and transposes, same BLAS, best of N) take {_ms(c['step_gemms_s'])} ms = "
              f"{100 * c['step_gemms_share']:.1f} % of the median step (their efficiency vs "
              f"the reference rate: {100 * c['step_gemms_efficiency']:.1f} %); the other "
              f"{_ms(c['median_s'] - c['step_gemms_s'])} ms is everything else (activations, "
              "softmax, loss, act', bias sums, input transpose, Python).")
        if c.get("step_products_s"):
            p(f"- {c['model']} batch 1: the step's own products alone (per layer the forward "
              "gemv with its activation, the hidden delta's gemv and the update's ger or the "
              "fused row pass, through the kernel wrappers less each wrapper's time on a 1x1 "
              f"layer) take {_us(c['step_products_s'])} µs (forward "
              f"{_us(c['step_products']['forward_s'])}, backward "
              f"{_us(c['step_products']['backward_s'])}) = "
              f"{100 * c['step_products_share']:.1f} % of the median step; the bytes of W they "
              f"read and write ({c['step_products']['bytes'] / 2**10:,.0f} KiB) in that time "
              f"make {c['step_products']['bytes'] / c['step_products_s'] / 1e9:.1f} GB/s.")
    p("")
    p("## Targets\n")
    p("| target | measured | status |")
    p("|---|---:|---|")
    for model, batch, metric, op, bound, text in TARGETS:
        case = next((c for c in cases if c["model"] == model and c["batch"] == batch), None)
        if case is None:
            p(f"| {text} | — | not run{' (--quick)' if quick else ''} |")
            continue
        value = case[metric]
        met = value >= bound if op == ">=" else value <= bound
        shown = (f"{100 * value:.1f} %" if metric == "efficiency" else
                 f"{value:.2f} x" if metric == "ratio_to_floor" else f"{value * 1e6:.2f} us")
        p(f"| {text} | {shown} | {'met' if met else 'MISSED'} |")
    p("")
    p("## Fused batch-1 row path vs gemv + ger\n")
    p("Whole training step at batch 1, interleaved; the fused path is switched off with "
      f"weight_decay = {NO_FUSED_WEIGHT_DECAY:g} (non-zero, so the Step skips the fused "
      "path; beta = 1 - lr x wd rounds to 1.0 in float32, so the update is the same SGD step "
      "via gemv + ger).\n")
    p("| model | batch | fused layers (float32 weights >= %d bytes) | enabled ms/step "
      "| disabled ms/step | disabled / enabled |" % _kernels.FUSED_ROW_MIN_BYTES)
    p("|---|---:|---|---:|---:|---:|")
    for c in cases:
        ab = c["fused_ab"]
        if not ab:
            continue
        sizes = c["sizes"]
        fused = [f"{a}x{b}" for l, (a, b) in enumerate(zip(sizes[:-1], sizes[1:]))
                 if l > 0 and takes_fused_path(a, b)]
        p(f"| {c['model']} | 1 | {', '.join(fused) or 'none'} | {_ms(ab['enabled_median_s'])} | "
          f"{_ms(ab['disabled_median_s'])} | "
          f"{ab['disabled_median_s'] / ab['enabled_median_s']:.3f} |")
    p("")
    if fused_rows:
        over = fused_rows[0]
        p("One layer, kernel wrappers at batch 1: `fused_delta_update(h, w, bias, delta, "
          "delta_prev, SIGMOID, lr)` vs `hidden_delta(...)` + `outer_update(..., alpha=-lr, "
          "beta=1)`. Times are medians per call pair in microseconds; 'net' subtracts the "
          f"Python wrapper overhead measured on a 1x1 layer (fused {_us(over['wrapper_overhead_fused_s'])} "
          f"us, unfused {_us(over['wrapper_overhead_unfused_s'])} us), which the Step does not pay.\n")
        p("| fan_in x fan_out | where | fused us | unfused us | unfused / fused | net fused us "
          "| net unfused us | net unfused / fused | current choice | same result |")
        p("|---|---|---:|---:|---:|---:|---:|---:|---|---|")
        for r in fused_rows:
            p(f"| {r['fan_in']}x{r['fan_out']} | {r['where']} | {_us(r['fused_s'])} | "
              f"{_us(r['unfused_s'])} | {r['speedup']:.2f} | {_us(r['fused_minus_overhead_s'])} | "
              f"{_us(r['unfused_minus_overhead_s'])} | {_fmt(r['speedup_minus_overhead'], '.2f')} | "
              f"{r['current_choice']} | {'yes' if r['same_result'] else 'NO'} |")
        p("")


def cases_weights(model):
    sizes = MODELS[model]
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))
