"""The README is a front page: short, and it opens with the two commands that set up and run the main
job on this machine and set up and run the tests."""

from __future__ import annotations

from tests.docs.doc_commands import REPO

OPENING = """\
```bash
scripts/setup.sh && .venv/bin/qbench run suites/mobile.yaml --device host   # set up, run the main job on this machine
scripts/test.sh                                                              # set up, run every test (slow ones too)
```"""


def test_the_readme_is_a_short_front_page():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024
    assert text.startswith("# qbench\n\n" + OPENING)


def test_the_readme_points_to_every_guide_page():
    text = (REPO / "README.md").read_text()
    for page in ("getting-started", "suites", "recipes", "devices", "nightly", "farm", "results", "troubleshooting",
                 "methodology", "figures"):
        assert f"(docs/{page}.md" in text, page
