"""What --help and `qbench init` say must be true: no doubled `%%`, int4-weight is 8da4w."""

from __future__ import annotations

import argparse

from qbench.cli import build_parser
from qbench.cli.init import TEMPLATE


def every_parser(parser: argparse.ArgumentParser, path=("qbench",)):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from every_parser(child, (*path, name))


def test_no_help_text_prints_a_doubled_percent_sign():
    doubled = [" ".join(path) for path, p in every_parser(build_parser()) if "%%" in p.format_help()]
    assert doubled == []


def test_init_calls_int4_weight_8da4w_as_the_recipe_does():
    line = next(line for line in TEMPLATE.splitlines() if "kind: int4-weight" in line)
    assert "8da4w" in line and "weight-only" not in line
