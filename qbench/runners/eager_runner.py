"""The eager reference runner: times a torch.export program (.pt2) run by PyTorch, per contract.md.

Self-contained (stdlib + torch), like python_runner.py, and shares its timing loop.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from python_runner import fail, parse_args, peak_rss_bytes, timed_phase  # noqa: E402


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.affinity:
        os.sched_setaffinity(0, {int(c) for c in args.affinity.split(",")})
    import json

    import torch

    torch.set_num_threads(args.threads)
    if not os.path.isfile(args.model):
        fail(f"no such program file: {args.model}")
    t0 = time.perf_counter()
    try:
        program = torch.export.load(args.model)
    except Exception as exc:
        fail(f"cannot load program {args.model}: {exc}")
    load_ms = (time.perf_counter() - t0) * 1e3
    t0 = time.perf_counter()
    module = program.module()
    init_ms = (time.perf_counter() - t0) * 1e3
    inputs, _ = program.example_inputs

    with torch.no_grad():
        t0 = time.perf_counter_ns()
        out = module(*inputs)
        first_ms = (time.perf_counter_ns() - t0) / 1e6
        warm, warm_s = timed_phase(lambda: module(*inputs), args.warmup, args.warmup_seconds, max(args.warmup, args.max_iterations))
        samples, _ = timed_phase(lambda: module(*inputs), args.iterations, args.min_seconds, args.max_iterations)
    # structured outputs (dicts, nests) as the flat leaves ExecuTorch would return
    from torch.utils import _pytree

    outs = _pytree.tree_leaves(out)
    print(json.dumps({
        "runner": "eager", "method": "forward", "load_ms": load_ms, "method_init_ms": init_ms,
        "first_inference_ms": first_ms, "warmup_iterations": len(warm), "warmup_seconds": warm_s,
        "samples_ns": samples, "threads": torch.get_num_threads(),
        "affinity": sorted(os.sched_getaffinity(0)) if args.affinity else None,
        "peak_rss_bytes": peak_rss_bytes(), "arena_bytes": None,
        "outputs": [{"dtype": str(o.dtype).replace("torch.", ""), "shape": list(o.shape)} if torch.is_tensor(o)
                    else {"dtype": "none" if o is None else type(o).__name__, "shape": []} for o in outs],
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
