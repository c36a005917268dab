"""MkDocs hooks (mkdocs.yml `hooks:`): pages generated from the code and the README at build time, so
they cannot drift. Nothing is written into docs/.

- reference/cli.md from the argparse parser, reference/suite.md and reference/device.md from the JSON
  Schema of the pydantic models (qbench/cli/reference.py);
- index.md is the README (the front page on GitHub and on the site), its `docs/` links made relative.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.structure.files import File

from qbench.cli.reference import cli_reference, schema_reference

GENERATED = {
    "reference/cli.md": cli_reference,
    "reference/suite.md": lambda: schema_reference("suite"),
    "reference/device.md": lambda: schema_reference("device"),
}


def home_page(readme: str) -> str:
    """The README as the site's home: links into docs/ become relative to docs/."""
    return re.sub(r"\]\(docs/", "](", readme)


def on_files(files, config):
    for path, make in GENERATED.items():
        files.append(File.generated(config, path, content=make()))
    readme = Path(config["config_file_path"]).parent / "README.md"
    files.append(File.generated(config, "index.md", content=home_page(readme.read_text())))
    return files
