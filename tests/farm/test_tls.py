"""A TLS farm of real processes: throwaway CA + certificate, a `dask scheduler` on tls://, a `qbench worker`
and `qbench run --cluster tls://...` with the same three --tls-* options. A client or worker without them,
or with a certificate from another CA, stops with one `qbench:` line before any run exists."""

from __future__ import annotations

import json

import pytest

from tests.helpers import REPO, qbench, tiny_suite, write_suite

pytestmark = pytest.mark.slow

SUITE = tiny_suite("tls")


@pytest.fixture(scope="module")
def tls_farm(tmp_path_factory, isolated_cache):
    import shutil

    from qbench.testing.farm import Farm
    from qbench.testing.tls import make_certificates

    root = tmp_path_factory.mktemp("tlsfarm")
    shutil.copytree(REPO / "suites" / "models", root / "models")
    tls = make_certificates(root / "certs")
    cluster = Farm(root / "procs", tls=tls)
    try:
        cluster.start_scheduler()
        cluster.start_worker("A", ["host"], prepare=1, listen="127.0.0.1")
        yield {"root": root, "farm": cluster, "tls": tls, "suite": write_suite(root, SUITE, "tls.yaml")}
    finally:
        cluster.stop()


def no_runs(db) -> bool:
    from qbench.results.store import ResultsStore

    return not db.exists() or ResultsStore(db).runs() == []


def test_a_run_over_tls_completes(tls_farm):
    f = tls_farm
    assert f["farm"].address.startswith("tls://")
    proc = qbench("run", f["suite"], "--cluster", f["farm"].address, "--db", "ok.db", "--json",
                  *f["tls"].qbench_options(), cwd=f["root"])
    assert proc.returncode == 0, proc.stderr[-3000:] + f["farm"].log("A")[-2000:]
    (cell,) = json.loads(proc.stdout)["cells"]
    assert cell["status"] == "ok" and cell["latency_ms"]["trials"] == 1
    assert "[prepared] tiny_mlp/fp32 on A" in proc.stderr


def test_a_client_without_certificates_stops_with_one_line(tls_farm):
    f = tls_farm
    proc = qbench("run", f["suite"], "--cluster", f["farm"].address, "--db", "none.db", cwd=f["root"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1] == (
        f"qbench: the scheduler {f['farm'].address} speaks TLS: give --tls-ca, --tls-cert and --tls-key (the farm's "
        "CA and this host's certificate and key)")
    assert no_runs(f["root"] / "none.db")
    worker = qbench("worker", f["farm"].address, "--prepare", "1", timeout=120, cwd=f["root"])
    assert worker.returncode == 2 and worker.stderr.strip().splitlines()[-1].startswith(
        f"qbench: the scheduler {f['farm'].address} speaks TLS: give --tls-ca")


def test_a_certificate_from_another_ca_is_refused(tls_farm, tmp_path):
    from qbench.testing.tls import make_certificates

    f = tls_farm
    stranger = make_certificates(tmp_path / "other")
    proc = qbench("run", f["suite"], "--cluster", f["farm"].address, "--db", "other.db",
                  *stranger.qbench_options(), cwd=f["root"])
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith(f"qbench: cannot reach the scheduler {f['farm'].address}: ") and "TLS" in last, last
    assert no_runs(f["root"] / "other.db")
