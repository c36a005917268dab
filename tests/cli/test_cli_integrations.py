"""Summary layouts, logging levels, CI annotations, completion, schema, init and packaged data: the
parts of `qbench` that meet shells, editors and CI systems. No model is run here."""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from tests.helpers import REPO, qbench


def _doc() -> dict:
    cells = []
    for i, status in enumerate(["failed", "ok", "ok"]):
        cells.append({
            "model": f"mobilenet_v3_small_with_a_long_name_{i}", "recipe": "int8-ptq-per-channel", "device": "pixel8-farm-01",
            "latency_ms": {"median": 12.3456 + i, "p90": 13.4567, "cv": 0.0123}, "speedup_vs_fp32": 2.345,
            "pte_bytes": 10_200_000, "peak_rss_bytes": 123_456_789, "sqnr_db": 31.25, "top1_agreement": 0.985,
            "delegated_ops": 120, "total_ops": 123, "status": status, "error": "lowering failed\nsecond line"})
    return {"suite": "mobile", "run_id": "20261129-030000-abcd", "cells": cells}


# every figure of the `--wide` summary (CV as a percentage, like everywhere)
FIGURES = ["12.3", "13.3", "14.3", "13.5", "1.2%", "2.35×", "9960.9", "117.7", "31.2", "0.98", "120/123"]


@pytest.mark.parametrize("layout", ["plain", "markdown", "table"])
def test_summary_never_cuts_a_figure_in_a_narrow_pipe(layout, monkeypatch):
    from qbench.cli.summary import print_summary

    monkeypatch.setenv("COLUMNS", "60")
    out = io.StringIO()  # not a terminal, like a CI log
    print_summary(_doc(), layout, out, wide=True)
    text = out.getvalue()
    assert "…" not in text
    for figure in FIGURES:
        assert figure in text, (figure, text)
    assert "mobilenet_v3_small_with_a_long_name_0/int8-ptq-per-channel@pixel8-farm-01: lowering failed second line" \
        in text.replace("\\_", "_")


def test_plain_summary_is_one_row_per_cell_and_markdown_is_a_table():
    from qbench.cli.summary import render_markdown, render_plain

    plain = render_plain(_doc()).splitlines()
    assert plain[0] == "mobile — 20261129-030000-abcd"
    assert [line.split()[-1] for line in plain[2:5]] == ["failed", "ok", "ok"]
    md = render_markdown(_doc()).splitlines()
    assert md[2].startswith("| model | recipe | device | median ms |") and md[3].startswith("|---|---|---|---:|")
    assert len([line for line in md if line.startswith("| mobilenet")]) == 3


def test_default_layout_follows_the_terminal():
    from qbench.cli.summary import default_layout

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert default_layout(io.StringIO()) == "plain" and default_layout(Tty()) == "table"


@pytest.mark.parametrize("verbosity,shown", [(-1, {"error"}), (0, {"warning", "error"}),
                                              (1, {"info", "warning", "error"}),
                                              (2, {"debug", "runtime", "info", "warning", "error"})])
def test_verbosity_decides_what_reaches_the_terminal(verbosity, shown, capsys, tmp_path):
    from qbench.cli import logs

    logs.configure(verbosity)
    run_log = logs.attach_run_log(tmp_path)
    try:
        q = logging.getLogger("qbench.test")
        q.debug("debug"), q.info("info"), q.warning("warning"), q.error("error")
        logging.getLogger("qbench.runtime").debug("runtime")
        logs.progress_line("progress")
    finally:
        logs.detach(run_log)
        logging.getLogger().removeHandler(logs._console)
    err = capsys.readouterr().err
    for word in ["debug", "runtime", "info", "warning", "error"]:
        assert (re.search(rf"^(qbench: \w+: )?{word}$", err, re.M) is not None) == (word in shown), (word, err)
    assert "progress" not in err  # drawn by the progress display, not the logger
    assert all(w in (tmp_path / "qbench.log").read_text() for w in ["debug", "runtime", "progress", "error"])


def test_quiet_and_verbose_are_accepted_on_every_command():
    from qbench.cli import build_parser

    parser = build_parser()
    for argv in (["-q", "devices"], ["devices", "-q"], ["results", "-v"], ["runner", "build", "-vv"],
                 ["schema", "suite", "-q"], ["-v", "run", "s.yaml"], ["compare", "a", "b", "-v"]):
        args = parser.parse_args(argv)
        assert args.quiet or args.verbose, argv


def test_compare_annotates_each_regression_for_github(nightly_db_path):
    from tests.report.synthetic import BASE, NEW

    plain = qbench("compare", BASE, NEW, "--db", nightly_db_path, "--fail-on-regression")
    assert plain.returncode == 3 and "::error" not in plain.stdout  # no CI detected: no annotations
    gh = qbench("compare", BASE, NEW, "--db", nightly_db_path, "--fail-on-regression", "--json",
                env={"GITHUB_ACTIONS": "true"})
    assert gh.returncode == 3
    regressions = [c for c in json.loads(gh.stdout)["cells"] if c["regression"]]
    errors = [line for line in gh.stderr.splitlines() if line.startswith("::error title=qbench regression%3A ")]
    assert len(errors) == len(regressions) >= 2
    assert any("resnet18/ptq_int8@pixel8" in e and "latency" in e for e in errors)
    assert all("\n" not in e and "%0A" not in e.split("::", 2)[1] for e in errors)


@pytest.fixture(scope="module")
def nightly_db_path(tmp_path_factory):
    from tests.report.synthetic import build_nightly_db

    path = tmp_path_factory.mktemp("nightly") / "qbench.db"
    build_nightly_db(path)
    return path


def test_completion_scripts_load(tmp_path):
    (tmp_path / "device_profiles").mkdir()
    (tmp_path / "device_profiles" / "myphone.yaml").write_text("transport: adb\n")
    bash = subprocess.run(
        ["bash", "-c", f"source <('{sys.executable}' -m qbench completion bash); complete -p qbench; "
                       "COMP_WORDS=(qbench ru); COMP_CWORD=1; COMP_LINE='qbench ru'; COMP_POINT=9; "
                       "_shtab_qbench qbench ru qbench; echo \"words: ${COMPREPLY[*]}\"; "
                       "COMP_WORDS=(qbench run s.yaml --device ''); COMP_CWORD=4; COMP_LINE='qbench run s.yaml --device ';"
                       " COMP_POINT=${#COMP_LINE}; _shtab_qbench qbench '' --device; echo \"devices: ${COMPREPLY[*]}\""],
        capture_output=True, text=True, timeout=60, env=os.environ, cwd=tmp_path)
    assert bash.returncode == 0, bash.stderr
    assert "complete -o bashdefault -F _shtab_qbench qbench" in bash.stdout
    assert re.search(r"^words: .*\b(run|runner)\b", bash.stdout, re.M)
    devices = re.search(r"^devices: (.*)$", bash.stdout, re.M).group(1).split()
    assert {"host", "pixel8", "rpi5", "myphone"} <= set(devices)  # bundled, and the local folder's
    for shell, marker in (("zsh", "#compdef qbench"), ("fish", "complete -c qbench")):
        proc = qbench("completion", shell)
        assert proc.returncode == 0 and marker in proc.stdout and "init" in proc.stdout


def test_schema_validates_the_bundled_suites_and_profiles():
    import jsonschema

    suite = json.loads(qbench("schema", "suite").stdout)
    device = json.loads(qbench("schema", "device").stdout)
    for schema in (suite, device):
        jsonschema.Draft202012Validator.check_schema(schema)
    for path in sorted((REPO / "suites").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), suite)
    for path in sorted((REPO / "device_profiles").glob("*.yaml")):
        jsonschema.validate(yaml.safe_load(path.read_text()), device)
    typo = yaml.safe_load((REPO / "suites" / "smoke.yaml").read_text())
    typo["recipes"][1]["per_chanel"] = True  # the loader rejects it; so must an editor
    with pytest.raises(jsonschema.ValidationError, match="per_chanel"):
        jsonschema.validate(typo, suite)


def test_init_writes_a_valid_suite_and_refuses_to_overwrite(tmp_path):
    import jsonschema

    made = qbench("init", "--device", "pixel8", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    text = (tmp_path / "suite.yaml").read_text()
    assert text.startswith("# A qbench suite") and "source: torchvision:mobilenet_v2" in text
    assert (tmp_path / "device_profiles" / "pixel8.yaml").read_text() == (REPO / "device_profiles" / "pixel8.yaml").read_text()
    jsonschema.validate(yaml.safe_load(text), json.loads(qbench("schema", "suite").stdout))
    again = qbench("init", cwd=tmp_path)
    assert again.returncode == 2 and again.stderr.startswith("qbench: suite.yaml exists; pass --force")
    unknown = qbench("init", "--device", "pixle8", "-o", "other.yaml", cwd=tmp_path)
    assert unknown.returncode == 2 and "no bundled device profile 'pixle8'; bundled: " in unknown.stderr
    assert not (tmp_path / "other.yaml").exists()


def test_bundled_profiles_and_suites_are_found_outside_the_repo(tmp_path, monkeypatch):
    from qbench.devices.profiles import available_profiles, load_profile

    monkeypatch.chdir(tmp_path)
    assert {"host", "pixel8", "rpi5"} <= set(available_profiles(tmp_path))
    (tmp_path / "device_profiles").mkdir()
    (tmp_path / "device_profiles" / "pixel8.yaml").write_text("transport: adb\nserial: LOCAL123\n")
    assert load_profile("pixel8", tmp_path).serial == "LOCAL123"  # a local profile overrides the bundled one
    assert load_profile("rpi5", tmp_path).transport == "ssh"  # the others stay available
    check = qbench("run", "smoke", "--check", cwd=tmp_path)
    assert check.returncode == 0 and "smoke.yaml: ok" in check.stderr
    missing = qbench("run", "nope.yaml", cwd=tmp_path)
    assert missing.returncode == 2 and "bundled suites: digits, llm, llm-executorch, minilm, mobile, smoke, sweep" in missing.stderr


@pytest.mark.slow
def test_wheel_ships_suites_and_profiles(tmp_path):
    """A real wheel build from a copy of the source (setuptools follows qbench/_data's symlinks).
    Without build isolation: the test extra brings setuptools, and nothing is downloaded."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("qbench", "suites", "device_profiles"):
        shutil.copytree(REPO / name, src / name, symlinks=True, ignore=ignore)
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(src)], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("qbench-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in sorted((REPO / "suites").glob("*.yaml")) + sorted((REPO / "suites" / "models").glob("*.py")):
        assert f"qbench/_data/suites/{path.relative_to(REPO / 'suites').as_posix()}" in names
    for path in sorted((REPO / "device_profiles").glob("*.yaml")):
        assert f"qbench/_data/device_profiles/{path.name}" in names


@pytest.mark.parametrize("no_color", [False, True])
def test_terminal_table_colours_failures_unless_no_color(no_color, monkeypatch):
    from qbench.cli.summary import print_summary

    class Tty(io.StringIO):
        def isatty(self):
            return True

    monkeypatch.setenv("COLUMNS", "220")
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("TERM", raising=False)
    if no_color:
        monkeypatch.setenv("NO_COLOR", "1")
    out = Tty()
    print_summary(_doc(), "table", out, wide=True)
    assert ("\x1b[31m" in out.getvalue()) != no_color
    assert all(f in out.getvalue() for f in FIGURES)
