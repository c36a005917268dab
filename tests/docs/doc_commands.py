"""The `qbench …` commands written in README.md and docs/*.md, found where a reader would copy them
from: fenced code blocks, indented code blocks and inline code spans."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL = {"bash", "sh", "shell", "console"}
SEPARATORS = {"|", "||", "&", "&&", ";", ">", ">>", "<", "(", ")", "2>", "&>"}


@dataclass(frozen=True)
class DocCommand:
    where: str  # file:line
    argv: tuple[str, ...]  # after `qbench`
    complete: bool  # a whole command line (a code block), not a fragment in prose


def doc_files() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]


def commands_in(path: Path) -> list[DocCommand]:
    return commands_in_text(str(path.relative_to(REPO)), path.read_text())


def commands_in_text(name: str, text: str) -> list[DocCommand]:
    """Shell blocks (```bash, or indented) hold whole commands; other blocks (diagrams, output) and
    inline code hold fragments, whose command and flag names must still exist."""
    found, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        where = f"{name}:{number}"
        if line.lstrip().startswith("```"):
            fence = None if fence is not None else line.strip().strip("`").strip() or "text"
            continue
        if fence is not None or (line.startswith("    ") and "`" not in line):
            complete = fence in SHELL or fence is None
            found += [DocCommand(where, argv, complete) for argv in _invocations(line.strip())]
        else:
            for span in re.findall(r"`(qbench [^`]+)`", line):  # a command written inline starts the span
                found += [DocCommand(where, argv, False) for argv in _invocations(span)]
    return found


def _invocations(text: str) -> list[tuple[str, ...]]:
    """Every `qbench ARGS` in one shell line, up to a pipe, redirection or comment."""
    text = re.sub(r"^\$ ", "", text)
    if "qbench " not in text:
        return []
    try:
        lexer = shlex.shlex(text, posix=True, punctuation_chars="|&;<>()")
        lexer.whitespace_split, lexer.commenters = True, "#"
        tokens = list(lexer)
    except ValueError:  # an unbalanced quote: prose, not a command
        return []
    out = []
    for i, token in enumerate(tokens):
        starts = i == 0 or tokens[i - 1] in SEPARATORS or tokens[i - 1] in {"$", "-m"}
        if starts and (token == "qbench" or token.endswith("/qbench")):  # .venv/bin/qbench too
            argv = []
            for t in tokens[i + 1:]:
                if t in SEPARATORS:
                    break
                argv.append(t)
            if argv and argv[0].endswith(":"):  # `qbench worker: waiting …`: qbench's own output, not a command
                continue
            out.append(tuple(a for a in (_unbracket(t) for t in argv) if a not in ("", "...", "…")))
    return out


def _unbracket(token: str) -> str:
    """`[--experiment` / `NAME]`: an optional part written in usage style counts as given."""
    return token.strip("[]") if token.startswith("[") or token.endswith("]") else token
