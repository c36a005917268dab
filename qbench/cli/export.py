"""`qbench export mlflow RUN_ID`: a stored run into an MLflow tracking store (optional extra `mlflow`),
and `qbench run --mlflow`, which exports the run it just measured through the same code."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench import strict_json
from qbench.errors import ExitCode
from qbench.results.backends import DB_HELP, db_target
from qbench.results.runref import RUN_REF_HELP


def add_parsers(sub) -> None:
    exp = sub.add_parser("export", help="export a stored run to another tool (mlflow)",
                         description="Copy a stored run into another tool's store.")
    targets = exp.add_subparsers(dest="target", metavar="TARGET", required=True)
    ml = targets.add_parser(
        "mlflow", help="one MLflow run per qbench run, one nested child run per cell",
        description="Parent run: versions, git sha and settings as params, report.html as artifact. Child run per "
                    "cell: model, recipe, device, device info as params; latency, size, memory, energy, numerics "
                    "and accuracy as metrics. Needs `pip install 'qbench[mlflow]'`.",
        epilog="examples:\n  qbench export mlflow 20261129-030000-ab12 --tracking-uri sqlite:///mlflow.db\n"
               "  qbench export mlflow last~1:mobile --tracking-uri http://mlflow.internal:5000",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ml.add_argument("run_id", metavar="RUN_ID", help=RUN_REF_HELP)
    ml.add_argument("--tracking-uri", default=None,
                    help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else MLflow's own default); with "
                         "sqlite:///DIR/mlflow.db a new experiment keeps its artifacts in DIR/mlartifacts")
    ml.add_argument("--experiment", default=None, help="experiment name (default: qbench/<suite>)")
    ml.add_argument("--pte", action="store_true", help="also log each cell's .pte from the local artifact cache")
    ml.add_argument("--replace", action="store_true", help="delete an earlier export of this run first")
    ml.add_argument("--db", type=db_target, default=None, help=DB_HELP)
    ml.add_argument("--json", action="store_true", help="print the MLflow ids as JSON")
    ml.epilog += ("\n\nMLflow's own log lines show with -v. A tracking server that refuses connections is one\n"
                  "line at once; one that hangs gets MLFLOW_HTTP_REQUEST_TIMEOUT (here 15 s by default) and\n"
                  "MLFLOW_HTTP_REQUEST_MAX_RETRIES (here 1), which your environment overrides.")


def cmd_export(args) -> int:
    from qbench.report.mlflow_export import export_run
    from qbench.results.frame import default_db

    out = export_run(args.db or default_db(), args.run_id, tracking_uri=args.tracking_uri,
                     experiment=args.experiment, with_pte=args.pte, replace=args.replace,
                     verbose=args.verbosity > 0)
    if args.json:
        sys.stdout.write(strict_json.dumps(out, indent=1) + "\n")
    else:
        print(f"exported {out['run_id']} to experiment {out['experiment']!r}: MLflow run {out['parent_run_id']} "
              f"with {len(out['cells'])} cell runs")
    return ExitCode.OK


def add_run_options(run) -> None:
    ml = run.add_argument_group("MLflow", "export the finished run like `qbench export mlflow RUN_ID` "
                                          "(needs `pip install 'qbench[mlflow]'`)")
    ml.add_argument("--mlflow", action="store_true",
                    help="after the run, export it to MLflow: one parent run, one nested child run per cell, "
                         "the run's page as report.html")
    ml.add_argument("--mlflow-tracking-uri", metavar="URI", default=None,
                    help="MLflow tracking URI (implies --mlflow; default: $MLFLOW_TRACKING_URI, else MLflow's "
                         "own default); artifacts of a sqlite store go beside its database")
    ml.add_argument("--mlflow-experiment", metavar="NAME", default=None,
                    help="experiment name (implies --mlflow; default: qbench/<suite>)")


def wants_mlflow(args) -> bool:
    return bool(getattr(args, "mlflow", False) or getattr(args, "mlflow_tracking_uri", None)
                or getattr(args, "mlflow_experiment", None))


def check_run_options(args) -> None:
    """Before the suite runs: --mlflow without mlflow installed is a usage error, not a lost export."""
    import importlib.util

    from qbench.errors import UsageError
    from qbench.report.mlflow_export import PIP_HINT

    if wants_mlflow(args) and importlib.util.find_spec("mlflow") is None:
        raise UsageError(f"--mlflow: {PIP_HINT}; nothing was run")


def export_finished_run(args, db, run_id: str, page: Path | None, gate: dict | None = None,
                        cells: list[dict] | None = None) -> dict:
    """Export a run `qbench run` just finished (with the gate's verdict and each cell's `vs_base` when
    gated; `db` may be the open store and `cells` the run's `--json` cells: read once). An MLflow
    failure comes back as {"error", "retry"}: the run is stored and measured either way, so it is
    reported, not raised."""
    from qbench.errors import QbenchError
    from qbench.report.mlflow_export import export_run

    if gate is not None:
        gate = {**gate, "vs_base": {(c["model"], c["recipe"], c["device"], c.get("sweep") or ""): c["vs_base"]
                                    for c in cells or [] if c.get("vs_base") is not None}}
    try:
        return export_run(db, run_id, tracking_uri=args.mlflow_tracking_uri, experiment=args.mlflow_experiment,
                          report=page, gate=gate, verbose=getattr(args, "verbosity", 0) > 0, views=cells)
    except QbenchError as exc:
        retry = f"qbench export mlflow {run_id}" + (f" --tracking-uri {args.mlflow_tracking_uri}"
                                                    if args.mlflow_tracking_uri else "")
        return {"error": str(exc), "retry": retry}


COMMANDS = {"export": cmd_export}
