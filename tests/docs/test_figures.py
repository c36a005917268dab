"""A measured figure in the docs names the machine it was measured on and the script (or the qbench
command) that made it, so a reader can judge it and make it again."""

from __future__ import annotations

import re

import pytest

from tests.docs.doc_commands import REPO

NUMBER_WITH_UNIT = re.compile(r"\d(?:\.\d+)?\s?(?:ms|s|MB|MiB|KiB|KB|GiB|dB)\b")


def sections(text: str, level: str) -> list[tuple[str, str]]:
    parts = re.split(rf"^{level} (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def makers(text: str) -> list[str]:
    """Scripts and suites a text names as its source, that exist in the repository."""
    named = re.findall(r"`((?:benchmarks|scripts)/[\w./-]+\.py)", text)
    named += re.findall(r"qbench run (suites/[\w.-]+\.yaml)", text)
    return [n for n in named if (REPO / n).is_file()]


FIGURES = sections((REPO / "docs" / "figures.md").read_text(), "###")


def test_the_figures_page_names_its_machine():
    head = (REPO / "docs" / "figures.md").read_text().split("###")[0]
    assert "Machine:" in head and "vCPU" in head


@pytest.mark.parametrize("title, body", FIGURES, ids=[t for t, _ in FIGURES])
def test_every_figure_names_the_script_that_made_it(title, body):
    if NUMBER_WITH_UNIT.search(body):
        assert makers(body), f"figures.md, {title!r}: name the script or `qbench run suites/…` that measured it"
        assert re.search(r"idle|quiet|under load|while other jobs ran|load ~", body), \
            f"figures.md, {title!r}: say whether the machine was idle or under load"


def test_the_readme_first_run_names_machine_command_and_load():
    (body,) = [b for t, b in sections((REPO / "README.md").read_text(), "##") if t.startswith("A first run")]
    assert "vCPU" in body and "qbench run suites/smoke.yaml" in body and "load" in body
