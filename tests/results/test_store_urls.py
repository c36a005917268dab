"""Store URLs (issue 23, item 4): a file path or postgresql:// / postgres://; any other scheme is refused
in one line, exit 2, before anything is created; a password never appears in any output, log or report,
psycopg's own messages included.
"""

from __future__ import annotations


import pytest

from qbench.results.urls import db_target, redact, scrub
from tests.helpers import qbench, tiny_suite, write_suite

SECRET = "Hunter2x"
# every command that takes a store (args that parse; the store is what is refused)
COMMANDS = [
    ("run", "suite.yaml"), ("results",), ("results", "--runs"), ("report", "R1"), ("compare", "R1", "R2"),
    ("trend",), ("export", "mlflow", "R1"), ("ops", "R1"),
    ("sensitivity", "suite.yaml", "--model", "tiny_mlp", "--recipe", "int8", "--target", "sqnr>=30"),
]


@pytest.fixture
def folder(suite_dir):
    write_suite(suite_dir, tiny_suite("urls", recipes=("{name: fp32, kind: fp32}", "{name: int8, kind: dynamic}")))
    write_suite(suite_dir, tiny_suite("urls"), "fp32.yaml")
    return suite_dir


def _files(root):
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("how", ["--db", "QBENCH_DB"])
@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_a_foreign_scheme_is_refused_in_one_line_before_anything_is_created(folder, command, how):
    url = f"mysql://qb:{SECRET}@db/qbench"
    before = _files(folder)
    proc = qbench(*command, *(["--db", url] if how == "--db" else []), cwd=folder,
                  env={"QBENCH_DB": url} if how == "QBENCH_DB" else None)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [f"qbench: {how}: mysql://qb:***@db/qbench: not a results store qbench can "
                                        "use (mysql://); give a SQLite file path or a postgresql://user@host/db URL"]
    assert SECRET not in proc.stdout + proc.stderr
    assert _files(folder) == before  # no ./mysql:/qb:…@db/qbench store


@pytest.mark.parametrize("url, hint", [
    ("http://example.org/qbench", "give a SQLite file path"),
    ("sqlite:///tmp/x.db", "a SQLite store is given as its file path (/tmp/x.db)"),
    ("POSTGRESQL://qb@db/qbench", "give a SQLite file path or a postgresql://"),
])
def test_other_schemes_name_what_to_give_instead(tmp_path, url, hint):
    proc = qbench("results", "--db", url, cwd=tmp_path)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1 and hint in proc.stderr, proc.stderr
    assert _files(tmp_path) == []


@pytest.mark.parametrize("url", [
    f"postgresql://qb:{SECRET}%2@127.0.0.1:1/qbench",  # a bad percent-escape: psycopg quotes the password
    f"postgres://qb:{SECRET}@[::1/qbench",  # psycopg quotes the whole URL
    f"postgresql://qb@127.0.0.1:1/qbench?password={SECRET}&sslmode=bogus",
    f"postgresql://qb:{SECRET}@127.0.0.1:1/qbench",  # nothing listens there
])
@pytest.mark.parametrize("how", ["--db", "QBENCH_DB"])
@pytest.mark.parametrize("command", [("run", "suite.yaml"), ("results",), ("trend",)], ids=lambda c: c[0])
def test_a_password_never_appears_whatever_psycopg_says(folder, url, how, command):
    proc = qbench(*command, *(["--db", url] if how == "--db" else []), cwd=folder,
                  env={"QBENCH_DB": url, "QBENCH_DB_TIMEOUT": "3"} if how == "QBENCH_DB" else {"QBENCH_DB_TIMEOUT": "3"})
    assert proc.returncode == 2, proc.stderr
    assert len(proc.stderr.splitlines()) == 1 and "cannot open the results database" in proc.stderr, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_every_command_keeps_the_password_out_of_psycopg_s_message(folder, command):
    url = f"postgresql://qb:{SECRET}%2@127.0.0.1:1/qbench"  # psycopg: invalid percent-encoded token: "<password>"
    before = _files(folder)
    proc = qbench(*command, "--db", url, cwd=folder)
    assert _files(folder) == before  # not even an MLflow database or a reports folder
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == ["qbench: cannot open the results database postgresql://qb:***@127.0.0.1:1/"
                                        'qbench: invalid percent-encoded token: "***"'], proc.stderr


def test_a_run_into_a_password_url_keeps_it_out_of_output_log_store_and_page(folder, pg_url):
    url = pg_url.replace("postgresql://qbench@", f"postgresql://qbench:{SECRET}@")  # the test server trusts
    proc = qbench("run", "fp32.yaml", "--db", url, "--json", "-v", cwd=folder, timeout=900)
    assert proc.returncode == 0, proc.stderr
    assert SECRET not in proc.stdout + proc.stderr
    assert "qbench:***@" in proc.stderr
    written = [p for p in (folder / "reports").rglob("*") if p.is_file()]
    assert any(p.name == "qbench.log" for p in written) and any(p.name == "index.html" for p in written)
    for page in written:
        assert SECRET.encode() not in page.read_bytes(), page
    import psycopg

    with psycopg.connect(pg_url) as conn:  # nothing stored holds it either (runs, cells, trials)
        for table in ("runs", "cells", "trials"):
            for row in conn.execute(f"SELECT * FROM {table}").fetchall():
                assert SECRET not in repr(row), table


def test_redact_and_scrub():
    assert redact(f"postgresql://qb:{SECRET}@db:5432/q") == "postgresql://qb:***@db:5432/q"
    assert redact(f"postgresql://qb:Hun@ter@db/q?password={SECRET}") == "postgresql://qb:***@db/q?password=***"
    assert redact("reports/qbench.db") == "reports/qbench.db"
    url = f"postgresql://qb:{SECRET}%21@db/q"
    assert db_target(url) == url
    assert scrub(f'invalid token: "{SECRET}%21" and {SECRET}!') == 'invalid token: "***" and ***'
    assert scrub(f"connect to postgres://u:{SECRET}@h/d failed") == "connect to postgres://u:***@h/d failed"
