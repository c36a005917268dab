"""The Python runner: loads a .pte with `executorch.runtime` and times it (see contract.md).

Self-contained on purpose (stdlib + executorch only): it is pushed as one file to devices that have
Python and the executorch wheel but not qbench (a Raspberry Pi). Run in a fresh process per trial.
"""

import argparse
import json
import math
import os
import resource
import sys
import time

# ExecuTorch ScalarType codes -> (numpy dtype name, torch dtype name)
_DTYPES = {0: "uint8", 1: "int8", 2: "int16", 3: "int32", 4: "int64", 5: "float16", 6: "float32", 7: "float64", 11: "bool"}


def fail(message: str) -> "None":
    sys.stderr.write(f"qbench-runner: {message}\n")
    sys.stderr.flush()
    raise SystemExit(1)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="Time one ExecuTorch program (qbench's Python runner).")
    p.add_argument("--model", required=True)
    p.add_argument("--method", default="forward")
    p.add_argument("--warmup", type=int, default=10)
    p.add_argument("--warmup-seconds", type=float, default=0.5)
    p.add_argument("--iterations", type=int, default=50)
    p.add_argument("--min-seconds", type=float, default=1.0)
    p.add_argument("--max-iterations", type=int, default=100000)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--affinity", default=None, help="comma-separated CPU ids")
    p.add_argument("--inputs", default=None)
    p.add_argument("--outputs", default=None)
    p.add_argument("--etdump", default=None)
    p.add_argument("--json", action="store_true")
    p.add_argument("--input-sets", type=int, default=1, help="N input sets in --inputs; --outputs gets each one's outputs")
    p.add_argument("--prompt-tokens", type=int, default=0, help="generation mode: prefill this many seeded token ids")
    p.add_argument("--new-tokens", type=int, default=0, help="generation mode: then this many greedy decode steps")
    p.add_argument("--seed", type=int, default=0, help="generation mode: the prompt's seed")
    p.add_argument("--score-tokens", default=None, help="scoring mode: windows of int64 token ids (teacher forcing)")
    p.add_argument("--window", type=int, default=0, help="scoring mode: token ids per window")
    args = p.parse_args(argv)
    if (args.prompt_tokens > 0) != (args.new_tokens > 0):
        p.error("--prompt-tokens and --new-tokens go together (generation mode)")
    if bool(args.score_tokens) != (args.window > 0):
        p.error("--score-tokens and --window go together (scoring mode)")
    return args


def make_inputs(torch, meta, inputs_path, sets=1, index=0):
    """Input tensors from a raw file (exact sizes per method meta; set `index` of `sets`), or a deterministic fill."""
    infos = [meta.input_tensor_meta(i) for i in range(meta.num_inputs())]
    blob = None
    if inputs_path:
        try:
            with open(inputs_path, "rb") as f:
                blob = f.read()
        except OSError as exc:
            fail(f"cannot read inputs file {inputs_path}: {exc.strerror}")
        expected = sum(i.nbytes() for i in infos)
        if len(blob) != expected * sets:
            fail(f"inputs file has {len(blob)} bytes, method expects {expected} ({_describe(infos)})"
                 + (f" x {sets} sets" if sets > 1 else ""))
    tensors, offset = [], index * sum(i.nbytes() for i in infos)
    for info in infos:
        dtype = getattr(torch, _DTYPES.get(info.dtype(), "float32"))
        shape = list(info.sizes())
        if blob is not None:
            chunk = bytearray(blob[offset : offset + info.nbytes()])
            offset += info.nbytes()
            t = torch.frombuffer(chunk, dtype=dtype).reshape(shape) if chunk else torch.empty(shape, dtype=dtype)
        else:
            g = torch.Generator().manual_seed(0)
            t = torch.rand(shape, generator=g).to(dtype) if dtype.is_floating_point else torch.ones(shape, dtype=dtype)
        tensors.append(t)
    return tensors


def _describe(infos):
    return ", ".join(f"{_DTYPES.get(i.dtype(), i.dtype())}{list(i.sizes())}" for i in infos)


def peak_rss_bytes() -> int:
    """VmHWM of this process: unlike ru_maxrss, Linux does not carry it over from the parent across exec."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def timed_phase(run, min_count, min_seconds, max_count, thread_cpu=None):
    """Run until at least min_count iterations *and* min_seconds have passed (capped at max_count).

    With a `thread_cpu` list, each iteration's CPU time of this thread is appended to it."""
    samples = []
    start = time.perf_counter_ns()
    while len(samples) < max_count:
        t0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        run()
        c1 = time.thread_time_ns()
        samples.append(time.perf_counter_ns() - t0)
        if thread_cpu is not None:
            thread_cpu.append(c1 - c0)
        if len(samples) >= min_count and (time.perf_counter_ns() - start) / 1e9 >= min_seconds:
            break
    return samples, (time.perf_counter_ns() - start) / 1e9


def snapshot():
    """The raw text qbench's interference parser reads (same fields as the native runner)."""
    snap = {"t": time.perf_counter_ns(), "usage": resource.getrusage(resource.RUSAGE_SELF), "unreadable": {}}
    try:
        with open("/proc/stat") as f:
            snap["proc_stat"] = [ln.rstrip("\n") for ln in f if ln.startswith("cpu") and ln[3:4].isdigit()]
    except OSError as exc:
        snap["proc_stat"], snap["unreadable"]["proc_stat"] = [], f"cannot read /proc/stat: {exc.strerror}"
    lines = []
    try:
        for tid in os.listdir("/proc/self/task"):
            try:
                with open(f"/proc/self/task/{tid}/schedstat") as f:
                    lines.append(f.readline().strip())
            except OSError:
                pass
    except OSError as exc:
        snap["unreadable"]["schedstat"] = f"cannot read /proc/self/task: {exc.strerror}"
    if not lines:
        snap["unreadable"].setdefault("schedstat", "no /proc/self/task/*/schedstat")
    snap["schedstat"] = lines
    return snap


def interference(before, after, cores):
    def cpu_ns(u):
        return int((u.ru_utime + u.ru_stime) * 1e9)

    freqs, unreadable = {}, dict(before["unreadable"])
    for c in cores:
        path = f"/sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq"
        try:
            with open(path) as f:
                freqs[str(c)] = int(f.read().strip())
        except (OSError, ValueError) as exc:
            unreadable.setdefault("cpufreq", f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}")
    return {
        "wall_ns": after["t"] - before["t"],
        "process_cpu_ns": cpu_ns(after["usage"]) - cpu_ns(before["usage"]),
        "voluntary_switches": after["usage"].ru_nvcsw - before["usage"].ru_nvcsw,
        "involuntary_switches": after["usage"].ru_nivcsw - before["usage"].ru_nivcsw,
        "cores": cores,
        "clock_ticks_per_s": os.sysconf("SC_CLK_TCK"),
        "proc_stat_before": before["proc_stat"], "proc_stat_after": after["proc_stat"],
        "schedstat_before": before["schedstat"], "schedstat_after": after["schedstat"],
        "cpufreq_khz": freqs, "unreadable": unreadable,
    }


def import_runtime():
    """`executorch.runtime` without the compiler: its pybindings import `executorch.exir._warnings`
    for one warning class, and `executorch.exir`'s package init pulls in torch.export, dynamo and
    inductor (~8 s per process here, paid on every trial). A bare package object stands in for
    `executorch.exir` during the import, so only `_warnings.py` loads; the stand-in is removed after,
    and any problem falls back to the ordinary import."""
    import importlib.util
    import types

    if "executorch.exir" not in sys.modules:
        try:
            spec = importlib.util.find_spec("executorch")
            stub = types.ModuleType("executorch.exir")
            stub.__path__ = [os.path.join(list(spec.submodule_search_locations)[0], "exir")]
            sys.modules["executorch.exir"] = stub
            try:
                from executorch.extension.pybindings import portable_lib
                from executorch.runtime import Runtime
                return portable_lib, Runtime
            finally:
                if sys.modules.get("executorch.exir") is stub:
                    del sys.modules["executorch.exir"]
        except Exception:  # an executorch whose runtime needs more of exir: take the slow path
            for name in [m for m in sys.modules if m.startswith(("executorch.runtime", "executorch.extension.pybindings"))]:
                del sys.modules[name]
    from executorch.extension.pybindings import portable_lib
    from executorch.runtime import Runtime

    return portable_lib, Runtime


def start_runtime(args):
    """Pin the process, import torch and the ExecuTorch runtime (timed: `import_ms`) and size the
    thread pool. Returns (torch, portable_lib, Runtime, import_ms)."""
    if args.affinity:
        os.sched_setaffinity(0, {int(c) for c in args.affinity.split(",")})
    t_import = time.perf_counter()
    import torch

    portable_lib, Runtime = import_runtime()
    import_ms = (time.perf_counter() - t_import) * 1e3
    portable_lib._unsafe_reset_threadpool(args.threads)
    torch.set_num_threads(1)  # torch itself only builds input tensors here
    return torch, portable_lib, Runtime, import_ms


def load_method(args, Runtime):
    """Program load and method init, each timed. Returns (program, method, load_ms, method_init_ms)."""
    if not os.path.isfile(args.model):
        fail(f"no such program file: {args.model}")
    runtime = Runtime.get()
    t0 = time.perf_counter()
    try:
        program = runtime.load_program(args.model, enable_etdump=bool(args.etdump))
    except Exception as exc:
        fail(f"cannot load program {args.model}: {exc}")
    load_ms = (time.perf_counter() - t0) * 1e3
    if args.method not in program.method_names:
        fail(f"program has no method {args.method!r} (it has: {', '.join(sorted(program.method_names))})")
    t0 = time.perf_counter()
    try:
        method = program.load_method(args.method)
    except Exception as exc:
        fail(f"cannot initialise method {args.method!r}: {exc}")
    return program, method, load_ms, (time.perf_counter() - t0) * 1e3


def measure_inference(args, method, inputs) -> tuple:
    """The first inference, warm-up and measured phase. Returns the report's timing fields and the
    first inference's outputs."""
    t0 = time.perf_counter_ns()
    try:
        outputs = method.execute(inputs)
    except Exception as exc:
        fail(f"first inference failed: {exc}")
    first_ms = (time.perf_counter_ns() - t0) / 1e6

    def run():
        method.execute(inputs)

    warm, warm_s = timed_phase(run, args.warmup, args.warmup_seconds, max(args.warmup, args.max_iterations))
    thread_cpu = []
    before = snapshot()
    samples, _ = timed_phase(run, args.iterations, args.min_seconds, args.max_iterations, thread_cpu)
    after = snapshot()
    return {"first_inference_ms": first_ms, "warmup_iterations": len(warm), "warmup_seconds": warm_s,
            "samples_ns": samples, "thread_cpu_ns": thread_cpu,
            "interference": interference(before, after, sorted(os.sched_getaffinity(0)))}, outputs


def write_outputs(args, torch, method, outputs) -> None:
    """--outputs FILE: the raw bytes of every tensor output; with --input-sets, of every set in order."""
    with open(args.outputs, "wb") as f:
        for k in range(args.input_sets):
            if args.input_sets > 1:
                outputs = method.execute(make_inputs(torch, method.metadata, args.inputs, args.input_sets, k))
            for out in outputs:
                if not isinstance(out, torch.Tensor):  # a None leaf has no bytes (as in the native runner)
                    continue
                f.write(out.contiguous().numpy().tobytes())


def describe_outputs(torch, outputs) -> list:
    return [{"dtype": str(o.dtype).replace("torch.", ""), "shape": list(o.shape)} if isinstance(o, torch.Tensor)
            else {"dtype": "none" if o is None else type(o).__name__, "shape": []} for o in outputs]


def main(argv=None) -> int:
    args = parse_args(argv)
    torch, portable_lib, Runtime, import_ms = start_runtime(args)
    program, method, load_ms, method_init_ms = load_method(args, Runtime)
    head = {"runner": "python", "method": args.method, "import_ms": import_ms, "load_ms": load_ms,
            "method_init_ms": method_init_ms}
    if args.new_tokens or args.window:
        head["threads"] = int(portable_lib._threadpool_get_thread_count())
        return (generation_main if args.new_tokens else score_main)(args, torch, method, head)
    inputs = make_inputs(torch, method.metadata, args.inputs, args.input_sets)
    timing, outputs = measure_inference(args, method, inputs)
    if args.outputs:
        write_outputs(args, torch, method, outputs)
    if args.etdump:
        program.write_etdump_result_to_file(args.etdump)
    report = {
        **head, **timing,
        "threads": int(portable_lib._threadpool_get_thread_count()),
        "affinity": sorted(os.sched_getaffinity(0)) if args.affinity else None,
        # includes the interpreter and torch; the native runner's figure is the one to compare
        "peak_rss_bytes": peak_rss_bytes(),
        "arena_bytes": None,
        "outputs": describe_outputs(torch, outputs),
    }
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


# ---- generation mode (a causal LM with its KV cache in the program; contract.md "Generation mode")

_LCG_MUL, _LCG_ADD, _MASK = 6364136223846793005, 1442695040888963407, (1 << 64) - 1


def prompt_ids(seed, count, vocab):
    """The seeded prompt (the same LCG as qbench.models.causal_lm.prompt_ids and the native runner)."""
    state, ids = (seed * _LCG_MUL + _LCG_ADD) & _MASK, []
    for _ in range(count):
        state = (state * _LCG_MUL + _LCG_ADD) & _MASK
        ids.append((state >> 33) % vocab)
    return ids


def generate_once(torch, method, prompt, new_tokens, keep_logits=False, thread_cpu=None):
    """Prefill, then new_tokens greedy decode steps (argmax here, in the runner). Returns
    (prefill_ns, decode step ns list, tokens, logits per step or None)."""
    def step(ids, start):
        out = method.execute([torch.tensor([ids], dtype=torch.long),
                              torch.arange(start, start + len(ids), dtype=torch.long)])[0]
        return out

    t0 = time.perf_counter_ns()
    logits = step(prompt, 0)
    tokens = [int(logits.argmax())]
    prefill_ns = time.perf_counter_ns() - t0
    kept = [logits.clone()] if keep_logits else None
    steps = []
    for k in range(new_tokens):
        t0 = time.perf_counter_ns()
        c0 = time.thread_time_ns()
        logits = step([tokens[-1]], len(prompt) + k)
        tokens.append(int(logits.argmax()))
        c1 = time.thread_time_ns()
        steps.append(time.perf_counter_ns() - t0)
        if thread_cpu is not None:
            thread_cpu.append(c1 - c0)
        if kept is not None:
            kept.append(logits.clone())
    return prefill_ns, steps, tokens, kept


def generation_phase(run, min_count, min_seconds, max_count):
    """Whole generations until at least min_count *and* min_seconds (capped at max_count)."""
    done, start = [], time.perf_counter_ns()
    while len(done) < max_count:
        done.append(run())
        if len(done) >= min_count and (time.perf_counter_ns() - start) / 1e9 >= min_seconds:
            break
    return done, (time.perf_counter_ns() - start) / 1e9


def generation_main(args, torch, method, head):
    vocab = int(list(method.metadata.output_tensor_meta(0).sizes())[-1])
    prompt = prompt_ids(args.seed, args.prompt_tokens, vocab)
    t0 = time.perf_counter_ns()
    try:
        first = generate_once(torch, method, prompt, args.new_tokens)
    except Exception as exc:
        fail(f"first generation failed: {exc}")
    first_ms = (time.perf_counter_ns() - t0) / 1e6
    warm, warm_s = generation_phase(lambda: generate_once(torch, method, prompt, args.new_tokens),
                                    args.warmup, args.warmup_seconds, max(args.warmup, args.max_iterations))
    thread_cpu = []
    before = snapshot()
    runs, _ = generation_phase(lambda: generate_once(torch, method, prompt, args.new_tokens, thread_cpu=thread_cpu),
                               args.iterations, args.min_seconds, args.max_iterations)
    after = snapshot()
    if args.outputs:  # one more generation, its logits per step (device numerics)
        with open(args.outputs, "wb") as f:
            for logits in generate_once(torch, method, prompt, args.new_tokens, keep_logits=True)[3]:
                f.write(logits.contiguous().numpy().tobytes())
    report = dict(head)
    report.update({
        "first_inference_ms": first_ms, "warmup_iterations": len(warm), "warmup_seconds": warm_s,
        "samples_ns": [ns for r in runs for ns in r[1]], "thread_cpu_ns": thread_cpu,
        "interference": interference(before, after, sorted(os.sched_getaffinity(0))),
        "affinity": sorted(os.sched_getaffinity(0)) if args.affinity else None,
        "peak_rss_bytes": peak_rss_bytes(), "arena_bytes": None,
        "outputs": [{"dtype": "float32", "shape": [1, vocab]}],
        "generation": {"prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens, "seed": args.seed,
                       "generations": len(runs), "prefill_ns": [r[0] for r in runs],
                       "decode_ns": [sum(r[1]) for r in runs], "tokens": first[2]},
    })
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


# ---- scoring mode (teacher forcing for perplexity; contract.md "Scoring mode")

def read_score_tokens(path, window, vocab):
    import array

    ids = array.array("q")
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        fail(f"cannot read score tokens {path!r}: {exc.strerror}")
    if not data or len(data) % (8 * window):
        fail(f"score tokens {path!r} hold {len(data)} bytes, not whole windows of {window} int64 token ids")
    ids.frombytes(data)
    bad = next((i for i in ids if not 0 <= i < vocab), None)
    if bad is not None:
        fail(f"score token id {bad} is outside the program's vocabulary ({vocab})")
    return ids


def score_windows(torch, method, ids, window, thread_cpu):
    """Each window from position 0, its tokens fed one by one; the NLL of each next token (log-softmax
    in double here, as the native runner). Returns (NLL per scored token, step ns)."""
    nlls, steps = [], []
    for w in range(len(ids) // window):
        tokens = ids[w * window:(w + 1) * window]
        for i in range(window - 1):
            t0, c0 = time.perf_counter_ns(), time.thread_time_ns()
            logits = method.execute([torch.tensor([[tokens[i]]], dtype=torch.long),
                                     torch.tensor([i], dtype=torch.long)])[0].reshape(-1).double()
            nlls.append(float(torch.logsumexp(logits, 0) - logits[tokens[i + 1]]))
            thread_cpu.append(time.thread_time_ns() - c0)
            steps.append(time.perf_counter_ns() - t0)
    return nlls, steps


def score_main(args, torch, method, head):
    vocab = int(list(method.metadata.output_tensor_meta(0).sizes())[-1])
    ids = read_score_tokens(args.score_tokens, args.window, vocab)
    thread_cpu = []
    before = snapshot()
    try:
        nlls, steps = score_windows(torch, method, ids, args.window, thread_cpu)
    except Exception as exc:
        fail(f"scoring failed: {exc}")
    after = snapshot()
    if args.outputs:
        with open(args.outputs, "wb") as f:
            f.write(torch.tensor(nlls, dtype=torch.float32).numpy().tobytes())
    report = dict(head)
    report.update({
        "first_inference_ms": steps[0] / 1e6, "warmup_iterations": 0, "warmup_seconds": 0.0,
        "samples_ns": steps, "thread_cpu_ns": thread_cpu,
        "interference": interference(before, after, sorted(os.sched_getaffinity(0))),
        "affinity": sorted(os.sched_getaffinity(0)) if args.affinity else None,
        "peak_rss_bytes": peak_rss_bytes(), "arena_bytes": None,
        "outputs": [{"dtype": "float32", "shape": [1, vocab]}],
        "generation": {"mode": "score", "window": args.window, "windows": len(ids) // args.window,
                       "scored_tokens": len(nlls), "nll_sum": math.fsum(nlls)},
    })
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
