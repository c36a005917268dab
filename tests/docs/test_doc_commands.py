"""Every `qbench …` command in the README and the docs is parsed by the real parser: a typo'd flag,
a removed command or a wrong choice fails here, naming the file and line."""

from __future__ import annotations

import argparse
import contextlib
import io

import pytest

from qbench.cli import build_parser
from qbench.cli.reference import cli_reference, commands
from tests.docs.doc_commands import commands_in, commands_in_text, doc_files

# the pages, and the generated CLI reference (the parsers' own examples)
COMMANDS = [c for path in doc_files() for c in commands_in(path)] + commands_in_text("reference/cli.md", cli_reference())


def parse_error(argv: tuple[str, ...], complete: bool) -> str | None:
    """The parser's complaint about `qbench ARGV`, or None. A fragment in prose (`qbench run --cluster`)
    may leave out required arguments, but every command and flag it names must exist."""
    parser = build_parser()
    for _, p in commands(parser):  # a doc spells flags out: `--fail-on-regr` is not accepted as a prefix
        p.allow_abbrev = False
    if not complete:
        return _unknown_words(parser, list(argv))
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            parser.parse_args(list(argv))
        except SystemExit as exc:
            return err.getvalue().strip().splitlines()[-1] if exc.code else None
    return None


def _unknown_words(parser: argparse.ArgumentParser, argv: list[str]) -> str | None:
    while argv and not argv[0].startswith("-"):
        sub = next((a for a in parser._actions if isinstance(a, argparse._SubParsersAction)), None)
        if sub is None:
            break
        if argv[0] not in sub.choices:
            return f"unknown command {argv[0]!r}"
        parser, argv = sub.choices[argv[0]], argv[1:]
    known = {s for a in parser._actions for s in a.option_strings}
    unknown = [t.split("=")[0] for t in argv if t.startswith("-") and t.split("=")[0] not in known and t != "-"]
    return f"unknown option(s) {unknown}" if unknown else None


def test_the_docs_hold_commands():
    assert len(COMMANDS) > 60 and any(c.where.startswith("README.md") for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: f"{c.where}:{' '.join(c.argv)[:60]}")
def test_command_parses(command):
    assert parse_error(command.argv, command.complete) is None, f"{command.where}: qbench {' '.join(command.argv)}"


@pytest.mark.parametrize("line, complete", [
    ("qbench run suites/smoke.yaml --devce host", True),
    ("qbench compare A B --treshold 5%", True),
    ("qbench results --format xml", True),
    ("qbench run suites/smoke.yaml --fail-on-regr 5%", True),
    ("qbench run --clusterr", False),
    ("qbench trnd --last 3", False),
])
def test_a_wrong_flag_in_a_doc_fails(tmp_path, line, complete):
    page = tmp_path / "page.md"
    page.write_text(f"```bash\n{line}\n```\n" if complete else f"Use `{line}` here.\n")
    (found,) = commands_in_text("page.md", page.read_text())
    assert parse_error(found.argv, found.complete) is not None
