"""If the full report cannot be written, `qbench run` still leaves the run's summary page."""

from __future__ import annotations

from rich.console import Console

from qbench.cli.run import _write_page


def test_summary_page_is_written_when_the_report_fails(tmp_path, monkeypatch):
    import qbench.report.html

    def broken(*args, **kwargs):
        raise RuntimeError("report bug")

    monkeypatch.setattr(qbench.report.html, "write_report", broken)
    doc = {"suite": "s", "run_id": "r1", "status": "complete", "started_at": "t0", "ended_at": "t1",
           "versions": {"torch_version": "2.14.1", "executorch_version": "1.5.1"}, "git_sha": None, "cells": []}
    page, _ = _write_page(tmp_path / "q.db", "r1", doc, tmp_path / "r1", Console(file=open(tmp_path / "log", "w")))
    assert page == tmp_path / "r1" / "index.html" and "qbench — s" in page.read_text()
