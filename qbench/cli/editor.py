"""`qbench completion` and `qbench schema`: shell completion and editor support.

Completion scripts come from shtab: it writes a static script from the argparse parser, so pressing
TAB never starts Python (argcomplete would import qbench on every TAB) and the script always matches
this version's commands and flags.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qbench import strict_json
from qbench.errors import ExitCode

SHELLS = ["bash", "zsh", "fish"]
_DIRECTORIES = {"reports_dir", "cache_dir", "profiles"}


def add_parsers(sub) -> None:
    comp = sub.add_parser(
        "completion", help="print a shell completion script (bash, zsh, fish)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the completion script for a shell; install it once:",
        epilog="  bash   echo 'source <(qbench completion bash)' >> ~/.bashrc\n"
               "  zsh    qbench completion zsh > \"${fpath[1]}/_qbench\"   (then restart zsh)\n"
               "  fish   qbench completion fish > ~/.config/fish/completions/qbench.fish")
    comp.add_argument("shell", choices=SHELLS)

    schema = sub.add_parser(
        "schema", help="print the JSON Schema of a suite (or device profile) for editors",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="The JSON Schema that qbench's loader enforces, for editors' YAML support.",
        epilog="example (VS Code, redhat.vscode-yaml):\n"
               "  qbench schema suite > .qbench-suite.schema.json\n"
               "  and in .vscode/settings.json:\n"
               "  {\"yaml.schemas\": {\".qbench-suite.schema.json\": [\"suites/*.yaml\"]}}\n"
               "or put `# yaml-language-server: $schema=.qbench-suite.schema.json` on a suite's first line")
    schema.add_argument("kind", choices=["suite", "device"], help="suite: a suite YAML; device: a device profile")


def cmd_completion(args) -> int:
    import shtab

    from qbench.cli import build_parser

    parser = build_parser()
    _mark_paths(parser, shtab)
    sys.stdout.write(shtab.complete(parser, shell=args.shell))
    return ExitCode.OK


def _mark_paths(parser: argparse.ArgumentParser, shtab) -> None:
    """Suites complete *.yaml, other paths file names (folders for the folder options), --device the
    profile names: the bundled ones (as of this script) and ./device_profiles/*.yaml at TAB time."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in dict.fromkeys(action.choices.values()):
                _mark_paths(child, shtab)
        elif hasattr(action, "complete"):
            continue
        elif action.dest == "suite":
            action.complete = shtab.glob("*.yaml", "*.yml")
        elif action.dest == "device":
            action.complete = shtab.cmd(_device_names_command())
        elif action.type is Path:
            action.complete = shtab.DIRECTORY if action.dest in _DIRECTORIES else shtab.FILE


def _device_names_command() -> str:
    from qbench.bundled import profiles_dir

    folder = profiles_dir()
    bundled = sorted({"host", *(p.stem for p in folder.glob("*.yaml"))} if folder else {"host"})
    return f"echo {' '.join(bundled)}; ls device_profiles 2>/dev/null | sed -n 's/[.]yaml$//p'"


def cmd_schema(args) -> int:
    from qbench.cli.json_schema import SCHEMAS

    sys.stdout.write(strict_json.dumps(SCHEMAS[args.kind](), indent=1, ensure_ascii=False) + "\n")
    return ExitCode.OK


COMMANDS = {"completion": cmd_completion, "schema": cmd_schema}
