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


def test_the_run_page_goes_to_a_temporary_folder_when_the_reports_folder_cannot_be_written(tmp_path):
    """After the suite was measured, an unwritable --reports-dir must not cost the page (issue 10)."""
    from tests.mounts import read_only_folder
    from tests.report.synthetic import NEW, build_nightly_db

    db = tmp_path / "q.db"
    build_nightly_db(db)
    log = tmp_path / "log"
    with read_only_folder(tmp_path / "ro") as ro:
        page, used = _write_page(db, NEW, {}, ro / NEW, Console(file=open(log, "w"), width=300))
    assert page.is_file() and used == page.parent and not str(page).startswith(str(ro))
    assert NEW in page.read_text()
    assert f"writing the run's outputs to {used}" in log.read_text()
