"""Reading the log format the shell snippets write: header, marks, snapshots, data lines, skips.

    # qbench-power v1 source=android-battery clock=epochrealtime period=0.1
    1700000000.100000 -1234000 3987000 Discharging        <- data line (source-specific)
    # mark run_start 1700000000.150000 clock=epochrealtime
    # snap run_end 1700000001.000000 clock=date           <- counter snapshot ...
    # end run_end 1700000001.020000                       <- ... and its end

Other `#` lines are comments. A line cut off at the end of the file (the loop was killed mid-write)
is skipped and counted like any garbage line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Clocks that all count Unix epoch seconds, so their marks and samples line up with each other.
EPOCH_CLOCKS = frozenset({"epochrealtime", "date", "python"})
_NUMBER = re.compile(r"^[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?$")
MAX_EXAMPLES = 5


def parse_number(token: str) -> float | None:
    """A finite decimal number, or None. Python's float() would take 'nan', 'inf' and '1_000'."""
    if "," in token and "." not in token:  # bash's $EPOCHREALTIME follows LC_NUMERIC (de_DE: 1,5)
        token = token.replace(",", ".", 1)
    if not _NUMBER.match(token):
        return None
    return float(token)


@dataclass
class Skips:
    count: int = 0
    examples: list[str] = field(default_factory=list)

    def add(self, line: str, why: str = "") -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{line.strip()[:120]}" + (f" ({why})" if why else ""))


@dataclass
class Snapshot:
    label: str
    t_start: float
    t_end: float | None
    lines: list[str]
    attrs: dict[str, str]


@dataclass
class Scan:
    header: dict[str, str] = field(default_factory=dict)
    marks: dict[str, float] = field(default_factory=dict)
    data: list[str] = field(default_factory=list)  # data lines outside snapshots, in file order
    blocks: list[tuple[float, list[str]]] = field(default_factory=list)  # `# sample T` blocks
    snapshots: list[Snapshot] = field(default_factory=list)
    skips: Skips = field(default_factory=Skips)
    notes: list[str] = field(default_factory=list)

    @property
    def clock(self) -> str | None:
        return self.header.get("clock")


def _attrs(tokens: list[str]) -> dict[str, str]:
    return dict(t.split("=", 1) for t in tokens if "=" in t)


def scan(text: str, blocks: bool = False) -> Scan:
    """Split a log into its parts. With `blocks`, data lines after `# sample T` belong to that block."""
    out = Scan()
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    elif lines:  # no newline at the end: the last line may be half written
        out.skips.add(lines.pop(), "partial line at end of log")
    snap: Snapshot | None = None
    block: list[str] | None = None
    for line in lines:
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if line.startswith("#"):
            tok = line[1:].split()
            kind = tok[0] if tok else ""
            if kind == "qbench-power":
                out.header = _attrs(tok[1:])
            elif kind in ("mark", "snap", "end", "sample"):
                t = parse_number(tok[2]) if kind != "sample" and len(tok) > 2 else None
                if kind == "sample":
                    t = parse_number(tok[1]) if len(tok) > 1 else None
                if t is None:
                    out.skips.add(line, "directive without a valid time")
                    continue
                attrs = _attrs(tok[3:])
                clock = attrs.get("clock")
                if clock and out.clock and clock != out.clock and not {clock, out.clock} <= EPOCH_CLOCKS:
                    out.skips.add(line, f"clock {clock} differs from the log's {out.clock}")
                    continue
                if kind == "mark":
                    if tok[1] in out.marks:
                        out.notes.append(f"mark {tok[1]!r} appears twice; the first one is used")
                    else:
                        out.marks[tok[1]] = t
                elif kind == "snap":
                    snap = Snapshot(tok[1], t, None, [], attrs)
                    out.snapshots.append(snap)
                    if tok[1] not in out.marks:
                        out.marks[tok[1]] = t
                elif kind == "end":
                    if snap is not None and snap.label == tok[1]:
                        snap.t_end = t
                    snap = None
                else:
                    block = []
                    out.blocks.append((t, block))
            elif snap is not None:
                snap.lines.append(line)  # e.g. `# dev iio:device0` inside a snapshot
            continue
        if snap is not None:
            snap.lines.append(line)
        elif blocks and block is not None:
            block.append(line)
        else:
            out.data.append(line)
    return out
