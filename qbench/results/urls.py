"""What `--db` / QBENCH_DB may name, and keeping its password out of every message.

A store is a file path or a postgresql:// (postgres://) URL; any other `scheme://` is refused before
anything is created (a `mysql://…` must not become a SQLite file named `mysql:/…`).

A URL's password (`user:PASSWORD@host`, `?password=`) is never shown: `redact` is what messages and
run records show of a URL, and `scrub` takes every password qbench was given out of any text
(psycopg's own messages quote the URL, e.g. "invalid percent-encoded token: \"Hunter%2\"").
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

from qbench.errors import UsageError

URL_SCHEMES = ("postgresql://", "postgres://")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# user:PASSWORD@ — the password runs to the last `@` before the query (a raw `@` in it included)
_USERINFO = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/@?]*):([^?]*)@")
_QUERY_PASSWORD = re.compile(r"([?&]password=)([^&\s]*)", re.IGNORECASE)
_MIN_SCRUBBED = 3  # shorter secrets are only taken out of URLs (replacing every "ab" would garble text)

_secrets: set[str] = set()  # every password seen in a store URL by this process


def is_url(target: str | Path | None) -> bool:
    return isinstance(target, str) and target.startswith(URL_SCHEMES)


def db_target(text: str, origin: str = "--db") -> str | Path:
    """A store as given by `origin` (--db, QBENCH_DB): a PostgreSQL URL stays a string (Path would
    fold its `//`), a path becomes a Path; any other scheme is a UsageError."""
    found = _SCHEME.match(text)
    if found is None:
        return Path(text)
    _remember(text)
    if is_url(text):
        return text
    scheme = found[1].lower()
    hint = (f"a SQLite store is given as its file path ({_path_of(text)})" if scheme in ("sqlite", "file")
            else "give a SQLite file path or a postgresql://user@host/db URL")
    raise UsageError(f"{origin}: {redact(text)}: not a results store qbench can use ({scheme}://); {hint}")


def _path_of(url: str) -> str:
    rest = _SCHEME.sub("", url)
    return rest if rest.startswith("/") and not rest.startswith("//") else rest.lstrip("/") or "qbench.db"


def _remember(url: str) -> None:
    """Note the URL's password(s) so that `scrub` takes them out of any later message."""
    for secret in _passwords(url):
        _secrets.add(secret)


def _passwords(url: str) -> set[str]:
    found = set()
    info = _USERINFO.match(url)
    if info:
        raw = info[2]
        found |= {raw, unquote(raw)}
        found |= {part for part in (raw.split("@")[0], unquote(raw.split("@")[0]))}  # how libpq may cut it
    for match in _QUERY_PASSWORD.finditer(url):
        found |= {match[2], unquote(match[2])}
    return {s for s in found if s}


def redact(target: str | Path) -> str:
    """The target as messages show it: a URL without its password."""
    text = str(target)
    if not _SCHEME.match(text):
        return text
    text = _USERINFO.sub(r"\1:***@", text)
    return _QUERY_PASSWORD.sub(r"\1***", text)


def scrub(text: str, *urls: str) -> str:
    """`text` without any password of `urls` or of a store URL this process was given."""
    secrets = set(_secrets)
    for url in urls:
        secrets |= _passwords(url)
    text = re.sub(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s\"']+", lambda m: redact(m[0]), text)
    for secret in sorted(secrets, key=len, reverse=True):
        if len(secret) >= _MIN_SCRUBBED:
            text = text.replace(secret, "***")
    return text
