"""CI systems' own channels: the job summary page and per-regression annotations.

- GitHub Actions: `$GITHUB_STEP_SUMMARY` (a file the job page renders as Markdown) receives the run's
  Markdown summary; each regression becomes an `::error title=...::message` workflow command, which
  GitHub shows on the job page and the pull request.
- GitLab CI: regressions are failed test cases of the junit.xml that --fail-on-regression writes
  (`artifacts: reports: junit:`), which GitLab shows in the merge request; nothing is printed.
"""

from __future__ import annotations

import os
from pathlib import Path

from qbench.text import cell_label


def detected() -> str | None:
    if os.environ.get("GITHUB_ACTIONS") == "true":
        return "github"
    if os.environ.get("GITLAB_CI"):
        return "gitlab"
    return None


def _data(text: str) -> str:
    """GitHub's escaping of a workflow command's message (as @actions/core does it)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _prop(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def github_error(title: str, message: str) -> str:
    return f"::error title={_prop(title)}::{_data(message)}"


def annotate_regressions(result, stream) -> int:
    """One annotation per regressed cell, in the detected CI's format; returns how many were written."""
    if detected() != "github":
        return 0
    for c in result.regressions:
        label = cell_label(c.model, c.recipe, c.device, c.sweep)
        stream.write(github_error(f"qbench regression: {label}",
                                  f"{label} vs run {result.base_run}: " + "; ".join(c.reasons())) + "\n")
    stream.flush()
    return len(result.regressions)


def append_step_summary(db_path, run_id: str, gate: dict | None, views: list[dict] | None = None) -> Path | None:
    """Append the run's Markdown summary (the nightly summary.md when gated) to $GITHUB_STEP_SUMMARY.
    db_path: a store's path or the open store; `views`: the run's `--json` cells, when already made."""
    target = os.environ.get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    if gate is not None and Path(gate["summary"]).is_file():
        text = Path(gate["summary"]).read_text(encoding="utf-8")
    else:
        from qbench.report.markdown import markdown_summary

        text = markdown_summary(db_path, run_id, views=views)
    with open(target, "a", encoding="utf-8") as out:
        out.write(text.rstrip("\n") + "\n\n")
    return Path(target)
