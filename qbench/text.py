"""Names from a suite or a store, made safe to print, and the one spelling of a cell.

A suite may come from a pull request, so a model, recipe, device or suite name is untrusted text:
printed raw, `"m\\n::error title=x::y"` forges a GitHub annotation, `"\\n[9/9] [ok] fake"` a progress
line, `"\\x1b]0;…\\a"` sets the terminal's title. `safe` escapes every control character visibly
(`\\n`, `\\x1b`, `\\u2028`) so one name stays one line and draws only its own characters.
"""

from __future__ import annotations

import re

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
# C0, DEL, C1, and Unicode's line/paragraph separators and bidi/format controls (Cc, Cf, Zl, Zp)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")


def safe(text) -> str:
    """`text` with every control character written as its escape (`\\n`, `\\x1b`, `\\u202e`)."""
    text = "" if text is None else str(text)
    return _UNSAFE.sub(_escape, text)


def safe_lines(text) -> str:
    """`safe` for text whose line breaks are its own (a tooltip, an error's detail on a page): every
    line safe, the `\n` between them kept. Only where a new line cannot forge anything (HTML, SVG)."""
    return "\n".join(safe(line) for line in ("" if text is None else str(text)).split("\n"))


def _escape(match: re.Match) -> str:
    ch = match.group()
    if ch in _NAMED:
        return _NAMED[ch]
    return f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}"


def cell_label(model, recipe, device, point: str | None = "") -> str:
    """The one spelling of a cell everywhere qbench prints or writes one: `model/recipe@device`, then
    ` point` (the sweep point's label, e.g. `threads=2 batch=4`) when the suite sweeps."""
    label = f"{safe(model)}/{safe(recipe)}@{safe(device)}"
    return f"{label} {safe(point)}" if point else label

