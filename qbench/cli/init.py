"""`qbench init`: a first suite in one command, commented, plus the device profile it needs.

The suite is validated by the same loader `qbench run` uses before it is written, and a device's
profile is copied from the bundled ones into ./device_profiles/ (where the user edits it: a local
profile overrides the bundled one of the same name).
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from qbench.errors import ExitCode, UsageError

DEFAULT_MODEL = "torchvision:mobilenet_v2"

TEMPLATE = """\
# A qbench suite: every model × recipe is quantized, exported to ExecuTorch (.pte, XNNPACK) and
# measured on every device. Run it:   qbench run {suite_file}
# Check it without measuring:         qbench run {suite_file} --check
# Editor completion for this file:    qbench schema suite > .qbench-suite.schema.json  (docs: editors)
name: {name}
models:
  - name: {model_name}
    source: {model}    # torchvision:NAME, timm:NAME, hf:PATH, python:file.py:function, pt2:file.pt2
    inputs: [{{shape: [{shape}], dtype: float32}}]   # one entry per forward() argument, batch included
recipes:
  - {{name: fp32, kind: fp32}}                              # the reference every other recipe is compared with
  - {{name: int8-ptq, kind: ptq, per_channel: true}}        # static int8, calibrated on `calibration`
  - {{name: int8-dynamic, kind: dynamic}}                   # int8 weights, activations quantized on the fly
  # - {{name: int8-qat, kind: qat, steps: 20, lr: 1.0e-4}}  # quantization-aware fine-tuning
  # - {{name: int4-weight, kind: int4-weight}}               # 8da4w: int4 weights, int8 dynamic activations (linear)
calibration: {{kind: random, samples: 32, seed: 0}}          # or {{kind: npz, path: calib.npz}} with real inputs
devices: [{devices}]    # profiles in ./device_profiles/ (`qbench devices` lists them)
benchmark:
  warmup: 10            # warm-up runs: at least this many ...
  warmup_seconds: 0.5   # ... and at least this long
  iterations: 50        # measured runs: at least this many ...
  min_seconds: 1.0      # ... and at least this long
  trials: 3             # separate runner processes, interleaved across recipes
"""


def add_parsers(sub) -> None:
    init = sub.add_parser(
        "init", help="write a first suite (and its device profile) into the current folder",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Write a commented suite for one model and the device profiles it names, ready for "
                    "`qbench run`.",
        epilog="examples:\n"
               "  qbench init                                        mobilenet_v2 on this machine\n"
               "  qbench init --model torchvision:resnet18 --device pixel8\n"
               "  qbench init --model python:my_model.py:build --input-shape 1,128 -o my.yaml")
    init.add_argument("--model", default=DEFAULT_MODEL, metavar="SOURCE",
                      help=f"the model to benchmark (default: {DEFAULT_MODEL})")
    init.add_argument("--device", action="append", metavar="NAME",
                      help="a device profile to run on (repeatable; default: host); bundled ones are copied "
                           "into ./device_profiles/")
    init.add_argument("--input-shape", default="1,3,224,224", metavar="N,C,H,W",
                      help="the model's input shape, batch included (default: 1,3,224,224, an image model's)")
    init.add_argument("-o", "--output", type=Path, default=Path("suite.yaml"), help="the suite file (default: suite.yaml)")
    init.add_argument("--force", action="store_true", help="overwrite existing files")


def cmd_init(args) -> int:
    from qbench.bundled import profiles_dir
    from qbench.suite.loader import load_suite

    devices = list(dict.fromkeys(args.device or ["host"]))
    shape = _shape(args.input_shape)
    _check_model(args.model, args.output.parent)
    model_name = _name(Path(args.model.rsplit(":", 1)[-1]).stem)
    suite_name = model_name if args.output.stem == "suite" else _name(args.output.stem)
    text = TEMPLATE.format(suite_file=args.output, name=suite_name, model=args.model, model_name=model_name,
                           shape=", ".join(map(str, shape)), devices=", ".join(devices))
    bundled = profiles_dir()
    local = args.output.parent / "device_profiles"
    copies = []
    for name in devices:
        source = bundled / f"{name}.yaml" if bundled else None
        if (local / f"{name}.yaml").is_file():
            continue  # the user's own profile stays
        if (source is None or not source.is_file()) and name == "host":
            continue  # qbench knows this machine without a profile
        if source is None or not source.is_file():
            known = sorted(p.stem for p in bundled.glob("*.yaml")) if bundled else []
            raise UsageError(f"no bundled device profile {name!r}; bundled: {', '.join(known)} "
                             f"(or write device_profiles/{name}.yaml yourself, starting from one of them)")
        copies.append((source, local / f"{name}.yaml"))
    if args.output.exists() and not args.force:
        raise UsageError(f"{args.output} exists; pass --force to overwrite it, or -o another file")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8")
    try:
        load_suite(args.output)  # never leave a suite `qbench run` would reject
    except Exception:
        args.output.unlink()
        raise
    written = [str(args.output)]
    for source, target in copies:
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        written.append(str(target))
    sys.stdout.write(f"wrote {', '.join(written)}\n"
                     f"next: qbench run {args.output} --check   (validates the model and devices)\n"
                     f"      qbench run {args.output}\n")
    return ExitCode.OK


HOW_TO_NAME = ("name a model as KIND:REF: torchvision:NAME (e.g. torchvision:resnet18), timm:NAME, hf:FOLDER or "
               "hf:ORG/NAME, python:FILE.py:FUNCTION (a factory returning the module) or pt2:FILE.pt2")


def _check_model(source: str, suite_dir: Path) -> None:
    """The model exists before a suite names it: its source kind, and what that kind's check says
    (torchvision's list of models, the factory in its file, ...), as `qbench run --check` would."""
    from qbench.models import SOURCES, split_source

    try:
        kind, ref = split_source(source)
    except ValueError:
        raise UsageError(f"--model {source!r}: {HOW_TO_NAME}{_bare_name_hint(source)}") from None
    if kind not in SOURCES:
        raise UsageError(f"--model {source!r}: unknown source kind {kind!r}; {HOW_TO_NAME}")
    found = SOURCES.get(kind)
    problem = found.check(found.resolve(ref, suite_dir))
    if problem is not None:
        raise UsageError(f"--model {source!r}: {problem}")


def _bare_name_hint(name: str) -> str:
    """A bare torchvision model name gets its full spelling."""
    if not re.fullmatch(r"[A-Za-z0-9_]+", name):
        return ""
    import torchvision

    return f" (did you mean torchvision:{name}?)" if name in torchvision.models.list_models() else ""


def _shape(text: str) -> list[int]:
    try:
        shape = [int(x) for x in re.split(r"[,x ]+", text.strip()) if x]
    except ValueError:
        shape = []
    if not shape or any(n <= 0 for n in shape):
        raise UsageError(f"--input-shape {text!r}: give positive sizes separated by commas, e.g. 1,3,224,224")
    return shape


def _name(text: str) -> str:
    """A YAML-safe name: letters, digits, - _ . (the rest becomes _)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_") or "suite"


COMMANDS = {"init": cmd_init}
