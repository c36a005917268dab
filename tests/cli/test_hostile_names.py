"""Names from a suite (which a CI job may take from a pull request) forge nothing wherever qbench
prints them (issue 23 item 3), and a cell has one spelling everywhere (issue 24): a real run of a
suite whose model, recipe and suite names carry a newline + `::error`, a forged progress line, a
terminal-title OSC sequence and a colour code, then a gated run with GitHub's channels on."""

from __future__ import annotations

import re
import shutil
import xml.etree.ElementTree as ET

import pytest

from qbench.text import cell_label, safe
from tests.helpers import REPO, qbench, speed_up_samples, write_suite

ANNOTATION = "m\n::error title=forged::x"
PROGRESS = "\n[9/9] [ok] fake/fp32@host"
TITLE = "\x1b]0;title\x07"
COLOUR = "\x1b[31m"

# YAML double-quoted escapes: \n, \e (ESC), \a (BEL)
SUITE = r'''
name: "s\e[31mred\nnext"
models:
  - {name: "m\n::error title=forged::x", source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
  - {name: "\n[9/9] [ok] fake/fp32@host", source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
recipes:
  - {name: "\e]0;title\a", kind: fp32}
  - {name: "\e[31m", kind: dynamic}
devices: [host]
benchmark: {warmup: 1, warmup_seconds: 0, iterations: 20, min_seconds: 0, trials: 2, threads: 1,
            timeout_seconds: 60, quiet_start: {max_wait_s: 0}}
'''

CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("hostile")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    write_suite(root, SUITE)
    first = qbench("run", "suite.yaml", "--db", "r.db", "--summary", "plain", cwd=root)
    assert "Traceback" not in first.stderr, first.stderr
    run_id = re.search(r"^run (\S+) ", first.stderr, re.M).group(1)
    speed_up_samples(root / "r.db", run_id, 20)  # a baseline 20x as fast: every cell regresses, noise or not
    step = root / "step.md"
    gated = qbench("run", "suite.yaml", "--db", "r.db", "-v", "--summary", "markdown", "--baseline", run_id,
                   "--fail-on-regression", "5%", cwd=root, env={"GITHUB_ACTIONS": "true", "GITHUB_STEP_SUMMARY": str(step)})
    return {"root": root, "first": first, "gated": gated, "step": step, "run_id": run_id}


def _outputs(runs) -> dict[str, str]:
    gated_id = re.search(r"^run (\S+) ", runs["gated"].stderr, re.M).group(1)
    folder = runs["root"] / "reports" / gated_id
    return {"first stdout": runs["first"].stdout, "first stderr": runs["first"].stderr,
            "gated stdout": runs["gated"].stdout, "gated stderr": runs["gated"].stderr,
            "step summary": runs["step"].read_text(), "summary.md": (folder / "summary.md").read_text(),
            "junit.xml": (folder / "junit.xml").read_text(), "page": (folder / "index.html").read_text(),
            "log": (runs["root"] / "reports" / runs["run_id"] / "qbench.log").read_text()}


def test_no_output_carries_a_raw_control_character(runs):
    assert runs["gated"].returncode == 3, runs["gated"].stderr[-3000:]
    for where, text in _outputs(runs).items():
        found = CONTROL.findall(text)
        assert not found, f"{where}: {found[:5]}"


def test_no_name_starts_a_forged_line(runs):
    for where, text in _outputs(runs).items():
        for line in text.splitlines():
            assert not line.startswith("::error title=forged"), (where, line)
            assert not line.startswith("[9/9] [ok] fake"), (where, line)
    annotations = [line for line in runs["gated"].stderr.splitlines() + runs["gated"].stdout.splitlines()
                   if line.startswith("::")]
    assert annotations and all(line.startswith("::error title=qbench regression%3A ") for line in annotations)


def test_names_are_escaped_visibly_and_a_cell_is_spelled_one_way(runs):
    label = cell_label(ANNOTATION, TITLE, "host")
    assert label == "m\\n::error title=forged::x/\\x1b]0;title\\x07@host"
    out = _outputs(runs)
    assert f"[ok] {label}" in runs["first"].stderr  # the progress line
    plain = out["first stdout"].splitlines()
    assert plain[0].startswith("s\\x1b[31mred\\nnext — ")  # the suite's name in the summary title
    assert any(line.startswith("m\\n::error title=forged::x") for line in plain)  # the model column
    root = ET.fromstring(out["junit.xml"].encode())
    names = sorted(c.get("name") for c in root.iter("testcase"))
    assert names == sorted(cell_label(m, r, "host") for m in (ANNOTATION, PROGRESS) for r in (TITLE, COLOUR))
    assert {c.get("classname") for c in root.iter("testcase")} == {"qbench." + safe("s\x1b[31mred\nnext")}
    assert "m\\\\n::error title=forged::x/" in out["summary.md"]  # Markdown escapes the backslash itself
    assert "m\\n::error title=forged::x/\\x1b]0;title\\x07@host" in out["page"]


def test_safe_escapes_every_control_character_and_leaves_text_alone():
    assert safe(ANNOTATION) == "m\\n::error title=forged::x"
    assert safe(PROGRESS) == "\\n[9/9] [ok] fake/fp32@host"
    assert safe("\x1b]0;title\x07") == "\\x1b]0;title\\x07"
    assert safe("a\rb\tc\x00d\x7fe\x9bf\u2028g\u202eh") == "a\\rb\\tc\\x00d\\x7fe\\x9bf\\u2028g\\u202eh"
    assert safe("résumé 中文 a/b@c [x]") == "résumé 中文 a/b@c [x]"
    assert safe(safe(ANNOTATION)) == safe(ANNOTATION)  # idempotent: double use is harmless
    assert cell_label("m", "r", "d") == "m/r@d" and cell_label("m", "r", "d", "threads=2 batch=4") == "m/r@d threads=2 batch=4"
