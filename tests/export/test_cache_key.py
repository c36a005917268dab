"""The artifact cache key follows qbench's own artifact-building code, not just its version number."""

from __future__ import annotations

import shutil
from pathlib import Path

import qbench
from qbench.export.cache import artifact_code_digest, code_digest

PACKAGE = Path(qbench.__file__).resolve().parent


def test_editing_a_quantizer_changes_the_digest_but_editing_the_report_does_not(tmp_path):
    copy = tmp_path / "qbench"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "build"))
    before = code_digest(copy)
    assert before == artifact_code_digest()

    (copy / "report" / "html.py").write_text((copy / "report" / "html.py").read_text() + "\n# cosmetic\n")
    assert code_digest(copy) == before

    ptq = copy / "quantize" / "ptq.py"
    ptq.write_text(ptq.read_text() + "\n# a changed quantizer\n")
    assert code_digest(copy) != before
