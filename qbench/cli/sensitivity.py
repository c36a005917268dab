"""`qbench sensitivity`: which layers lose accuracy under a recipe, and the cheapest `skip:` that meets
a target; with --measure, what that mixed recipe costs on the suite's devices."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from qbench.errors import CellError, ExitCode, QbenchError
from qbench.results.backends import DB_HELP, db_target

HELP = """\
For one model × recipe of a suite: compare every quantized layer's output with fp32 (torchao's PT2E
numeric debugger), re-quantize once per layer (the most suspicious layers first, at most --max-layers)
with that layer alone kept fp32 (--method fp32-one) or alone quantized (quantize-one), and rank the
layers by it. Then search the fp32 layers that meet --target: each step re-evaluates the --candidates
best-ranked layers and every role group (`layer.*.attention.self`: the same module in each repeated
block) on top of the layers already chosen, keeps the best, and finally drops what the target does not
need. Prints the per-layer table and the mixed recipe as a YAML line for the suite's `recipes:`;
stores the table in the results store (qbench.results.load_layers) and writes
reports/<run_id>/index.html with SQNR by layer. --measure also lowers and runs fp32, the full recipe
and the mixed one on the suite's devices, so you see what the fix costs.

targets: sqnr>=DB · cosine>=X · accuracy>=X · accuracy_drop<=X% (the last two need the model's dataset)
recipes: kinds ptq, dynamic and qat (qat trains once per variant); int4-weight is not a PT2E graph
"""

EPILOG = """\
examples:
  qbench sensitivity suites/smoke.yaml --model tiny_cnn --recipe int8-ptq --target "sqnr>=30"
  qbench sensitivity suites/minilm.yaml --model minilm_l6 --recipe int8-ptq --target "cosine>=0.99" --max-layers 12
  qbench sensitivity suites/mobile.yaml --model mobilenet_v3_small --recipe int8-ptq --target "sqnr>=25" --measure
  qbench sensitivity suites/digits.yaml --model digits_mlp --recipe int8-ptq --target "accuracy_drop<=0.5%"
"""


def add_parsers(sub) -> None:
    import argparse

    from qbench.sensitivity.analysis import DEFAULT_CANDIDATES, DEFAULT_METHOD, METHODS

    p = sub.add_parser("sensitivity", help="per-layer quantization sensitivity and a mixed-precision suggestion",
                       description=HELP, epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("suite", type=Path, help="the suite YAML")
    p.add_argument("--model", required=True, help="a model name from the suite")
    p.add_argument("--recipe", required=True, help="a ptq, dynamic or qat recipe name from the suite")
    p.add_argument("--target", default="sqnr>=30", help='what the mixed recipe must reach (default "sqnr>=30")')
    p.add_argument("--max-layers", default=None, metavar="N",
                   help="screen at most N layers one at a time (the ones losing most SQNR first); default: all")
    p.add_argument("--max-seconds", default=None, metavar="S",
                   help="stop trying further layers, and the search, after S seconds (what was tried is used)")
    p.add_argument("--method", choices=list(METHODS), default=DEFAULT_METHOD,
                   help="which single-layer variants rank the layers: " + "; ".join(f"{k}: {v}" for k, v in METHODS.items())
                   + f" (default {DEFAULT_METHOD})")
    p.add_argument("--candidates", default=DEFAULT_CANDIDATES, metavar="K",
                   help=f"best-ranked single layers re-evaluated at each search step (default {DEFAULT_CANDIDATES})")
    p.add_argument("--measure", action="store_true",
                   help="also lower and run fp32, the recipe and the mixed recipe on the suite's devices")
    p.add_argument("--device", action="append", metavar="NAME", help="with --measure: this device instead of the suite's")
    p.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    p.add_argument("--cache-dir", type=Path, default=None, help="artifact cache for --measure")
    p.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where reports/<run_id>/ go")
    p.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def check_options(args):
    """Every option, before anything slow: one line naming the option and what it takes (exit 2).
    Returns the parsed target; numbers are converted in place."""
    from qbench.errors import UsageError
    from qbench.sensitivity.target import parse_target

    target = parse_target(args.target)
    args.max_layers = None if args.max_layers is None else _whole("--max-layers", args.max_layers)
    args.candidates = _whole("--candidates", args.candidates)
    if args.max_seconds is not None:
        args.max_seconds = _seconds("--max-seconds", args.max_seconds)
    if args.device and not args.measure:
        raise UsageError("--device picks where --measure runs; add --measure, or drop --device")
    return target


def _whole(flag: str, text) -> int:
    from qbench.errors import UsageError

    try:
        value = int(str(text))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: not a whole number; give a count of at least 1") from None
    if value < 1:
        raise UsageError(f"{flag} {value}: give a count of at least 1")
    return value


def _seconds(flag: str, text) -> float:
    import math

    from qbench.errors import UsageError

    try:
        value = float(str(text))
    except ValueError:
        raise UsageError(f"{flag} {text!r}: not a number of seconds") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{flag} {text}: give a positive, finite number of seconds")
    return value


def sensitivity_command(args) -> int:
    from rich.console import Console

    from qbench.results.frame import default_db
    from qbench.results.store import open_store
    from qbench.sensitivity.analysis import analyze, check_target, find_cell, open_cell

    console = Console(stderr=True)
    target = check_options(args)  # before anything slow
    db = args.db or default_db()  # QBENCH_DB is checked before anything slow too
    checked = load_checked(args.suite, args.device if args.measure else None)
    model_spec, recipe = find_cell(checked, args.model, args.recipe)
    check_target(checked, model_spec, target)
    store = open_store(db, create=True)
    with console.status("sensitivity…") as status:
        def progress(text: str) -> None:
            status.update(f"{args.model} · {args.recipe}: {text}")

        try:
            cell = open_cell(checked, model_spec, recipe, target, progress)
            doc = analyze(cell, target, args.max_layers, progress, args.max_seconds, args.method, args.candidates)
        except QbenchError:
            raise
        except Exception as exc:  # a model or quantizer failure: one line, like a failed cell
            text = (str(exc).strip().splitlines() or [""])[0]
            raise CellError("sensitivity", f"{args.model}/{args.recipe}: {type(exc).__name__}: {text}") from exc
    run_id = _record(store, checked, model_spec, recipe, doc, target, args, console)
    doc["run_id"] = run_id
    failed = False
    if args.measure:
        doc["measured"], failed = _measure(store, checked, model_spec, recipe, doc, run_id, args, console)
    else:
        from qbench.pipeline.orchestrator import now

        store.finish_run(run_id, "complete", now())
    doc["report"] = str(_report(store, run_id, args, console))
    if args.json:
        sys.stdout.write(json.dumps(_finite(doc), indent=1) + "\n")
    else:
        print_table(console, doc)
    return ExitCode.CELLS_FAILED if failed else ExitCode.OK


def load_checked(path: Path, devices: list[str] | None):
    """The suite, checked. Loaded by its absolute path: --measure checks a suite derived from this one,
    and a relative suite's resolved paths (suites/../examples/m.py) would be resolved against its
    folder a second time."""
    from qbench.pipeline.check import check_suite
    from qbench.suite.loader import load_suite

    return check_suite(load_suite(path.absolute()), devices=devices, preflight=False)


def _finite(value):
    """JSON has no NaN/Infinity: a non-finite figure (an all-zero output) becomes null."""
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def _record(store, checked, model_spec, recipe, doc, target, args, console) -> str:
    """A run in the results store holding the per-layer rows (and, with --measure, the measured cells)."""
    from qbench.pipeline.orchestrator import begin_run

    run_id = begin_run(checked, store)
    rows = [{**row, "position": i, "target": target.text, "metric_name": target.key, "method": doc["method"],
             "sensitivity_rank": row.get("rank"), "kept_fp32": int(row["kept_fp32"])}
            for i, row in enumerate(doc["layers"])]
    store.replace_layers(run_id, model_spec.name, recipe.name, rows)
    console.print(f"run [bold]{run_id}[/] · store {store.path}", highlight=False)
    return run_id


def _measure(store, checked, model_spec, recipe, doc, run_id, args, console):
    from qbench.cli.run import RichProgress
    from qbench.export.cache import ArtifactCache
    from qbench.pipeline.orchestrator import execute
    from qbench.sensitivity.measure import measured_cells, measured_suite

    derived = measured_suite(checked, model_spec, recipe, doc["suggestion"]["skip"], args.device)
    with RichProgress(console) as progress:
        outcome = execute(derived, store, run_id, ArtifactCache(args.cache_dir), progress)
    return measured_cells(store, run_id), bool(outcome.failed)


def _report(store, run_id: str, args, console) -> Path:
    from qbench.report.html import write_report

    return write_report(store.path, [run_id], args.reports_dir / run_id / "index.html")


def print_table(console, doc: dict) -> None:
    from rich.markup import escape
    from rich.table import Table

    key = doc["metric"]
    table = Table(title=f"{doc['model']} · {doc['recipe']} — per layer, graph order (target {doc['target']})",
                  title_justify="left")
    for col, just in [("#", "right"), ("module", "left"), ("op", "left"), ("SQNR dB", "right"), ("cosine", "right"),
                      ("max |err|", "right"), (f"{key} if fp32", "right"), (f"{key} if alone int8", "right"),
                      ("rank", "right"), ("fp32", "left")]:
        table.add_column(col, justify=just)

    def f(v, spec):
        return "" if v is None else format(v, spec)

    for i, row in enumerate(doc["layers"]):
        table.add_row(str(i), escape(row["module"]), escape(row["op"]), f(row["sqnr_db"], ".1f"),
                      f(row["cosine"], ".4f"), f(row["max_abs_error"], ".3g"), f(row["metric_if_fp32"], ".4g"),
                      f(row["metric_if_only_quantized"], ".4g"), str(row.get("rank", "")), "[bold]kept fp32[/]" if row["kept_fp32"] else "")
    console.print(table)
    base, s = doc["baseline"]["int8"], doc["suggestion"]
    console.print(f"full {doc['recipe']}: {key} = {base[key]:.4g}; with {len(s['skip'])} layer(s) fp32: "
                  f"{key} = {s['predicted'][key]:.4g} — target {doc['target']} "
                  + ("[green]met[/]" if s["met"] else f"[red]not met[/] ({s['stopped']}; try a larger --max-layers, "
                                                        "--candidates or --max-seconds)"))
    console.print("mixed recipe for the suite's `recipes:`:")
    console.print(s["recipe_yaml"].rstrip(), markup=False, highlight=False)
    for m in doc.get("measured") or []:
        lat = m["latency_median_ms"]
        console.print(f"  measured {m['recipe']}@{m['device']}: {m['status']}"
                      + (f", median {lat:.3f} ms" if lat else "") + (f", .pte {m['pte_bytes'] / 1024:.0f} KiB" if m['pte_bytes'] else "")
                      + (f", SQNR {m['sqnr_db']:.1f} dB" if m['sqnr_db'] is not None else ""), markup=False, highlight=False)
    console.print(f"report: {doc['report']}", highlight=False)


COMMANDS = {"sensitivity": sensitivity_command}
