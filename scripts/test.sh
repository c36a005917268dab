#!/usr/bin/env bash
# Set up (idempotent) and run the whole test suite, slow tests included. Extra args go to pytest.
# Starts a throwaway PostgreSQL server for the shared-store tests (QBENCH_TEST_PG_URL) and stops it after.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --test
if [[ -z "${QBENCH_TEST_PG_URL:-}" ]]; then
    pg_dir=$(mktemp -d /tmp/qbench-pg.XXXXXX)
    trap 'scripts/pg_test_server.sh stop "$pg_dir"' EXIT
    QBENCH_TEST_PG_URL=$(scripts/pg_test_server.sh start "$pg_dir")
    export QBENCH_TEST_PG_URL QBENCH_REQUIRE_PG=1
fi
.venv/bin/python -m pytest "$@"
