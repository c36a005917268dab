"""The artifact cache checks its files: a program overwritten, truncated or deleted since it was built
is a miss, and the rebuilt entry replaces the broken one (which used to stay forever)."""

from __future__ import annotations

import json
import os

import pytest

from qbench.export.cache import Artifact, ArtifactCache

KEY = "0123456789abcdef01234567"


def build(cache: ArtifactCache, payload: bytes = b"\x01" * 50_000) -> Artifact:
    """What prepare_variant does: files into a staging folder, then commit."""
    staging = cache.staging(KEY)
    (staging / "model.pte").write_bytes(payload)
    (staging / "inputs.bin").write_bytes(b"\x02" * 256)
    art = Artifact(key=KEY, dir=staging, program="model.pte", kind="pte", program_bytes=12345,  # a stale figure
                   numerics={"sqnr_db": 138.0})
    return cache.commit(staging, art)


@pytest.fixture
def cache(tmp_path):
    return ArtifactCache(tmp_path)


def test_commit_records_size_and_hash_and_pte_bytes_is_the_real_size(cache):
    art = build(cache)
    meta = json.loads((cache.root / KEY / "meta.json").read_text())
    assert meta["files"]["model.pte"]["bytes"] == 50_000 and len(meta["files"]["model.pte"]["sha256"]) == 64
    assert set(meta["files"]) == {"model.pte", "inputs.bin"}
    assert art.program_bytes == 50_000
    hit = cache.lookup(KEY)
    assert hit is not None and hit.cached and hit.program_bytes == 50_000


def overwrite(path):
    with open(path, "r+b") as f:  # same size, other weights (the issue: 200 floats set to 1e30)
        f.seek(20_000)
        f.write(b"\x60\xad\x78\xec" * 200)


def truncate(path):
    with open(path, "r+b") as f:
        f.truncate(30_000)


@pytest.mark.parametrize("damage", [overwrite, truncate, os.remove], ids=["overwritten", "truncated", "deleted"])
def test_a_damaged_entry_is_a_miss_and_the_rebuild_replaces_it(cache, damage, caplog):
    build(cache)
    damage(cache.root / KEY / "model.pte")
    assert cache.lookup(KEY) is None
    assert "damaged" in caplog.text and "rebuilding" in caplog.text
    art = build(cache)  # the rebuild commits over the broken entry
    assert art.dir == cache.root / KEY
    hit = cache.lookup(KEY)
    assert hit is not None and (hit.dir / "model.pte").stat().st_size == 50_000
    assert sorted(p.name for p in cache.root.iterdir()) == [KEY]  # no staging or broken folders left


def test_a_damaged_input_file_is_a_miss_too(cache):
    build(cache)
    (cache.root / KEY / "inputs.bin").write_bytes(b"\x03" * 256)
    assert cache.lookup(KEY) is None


def test_size_only_verification_still_catches_truncation(tmp_path):
    cache = ArtifactCache(tmp_path, verify_hash=False)
    build(cache)
    overwrite(cache.root / KEY / "model.pte")
    assert cache.lookup(KEY) is not None  # same size: only the hash would tell
    truncate(cache.root / KEY / "model.pte")
    assert cache.lookup(KEY) is None


def test_an_entry_without_recorded_hashes_is_rebuilt(cache):
    build(cache)
    meta_path = cache.root / KEY / "meta.json"
    meta = json.loads(meta_path.read_text())
    del meta["files"]
    meta_path.write_text(json.dumps(meta))
    assert cache.lookup(KEY) is None


def test_a_whole_entry_committed_concurrently_is_kept(cache):
    first = build(cache, b"\x01" * 50_000)
    second = build(cache, b"\x01" * 50_000)
    assert first.dir == second.dir and cache.lookup(KEY) is not None
    assert sorted(p.name for p in cache.root.iterdir()) == [KEY]


def edit_meta(cache: ArtifactCache, **changes) -> None:
    path = cache.root / KEY / "meta.json"
    meta = json.loads(path.read_text())
    meta.update(changes)
    path.write_text(json.dumps(meta, indent=1, sort_keys=True))


@pytest.mark.parametrize("changes", [{"arena_bytes": 1}, {"delegation": {"delegated_ops": 999, "total_ops": 999}},
                                     {"numerics": {"sqnr_db": 999.0}}], ids=["arena_bytes", "delegated_ops", "numerics"])
def test_an_edited_meta_json_is_never_reported_the_entry_is_rebuilt(cache, changes, caplog):
    build(cache)
    edit_meta(cache, **changes)  # the files are untouched: only a recorded figure was changed by hand
    assert cache.lookup(KEY) is None
    assert "meta.json was edited" in caplog.text and "rebuilding" in caplog.text
    build(cache)  # the rebuild measures the figures again and replaces the edited entry
    hit = cache.lookup(KEY)
    assert hit is not None and hit.arena_bytes is None and hit.numerics == {"sqnr_db": 138.0}


def test_a_meta_json_without_its_seal_is_rebuilt(cache):
    build(cache)
    path = cache.root / KEY / "meta.json"
    meta = json.loads(path.read_text())
    meta.pop("seal")
    path.write_text(json.dumps(meta))
    assert cache.lookup(KEY) is None


def test_an_artifact_moved_to_another_hosts_cache_is_sealed_there(cache, tmp_path):
    from qbench.farm.artifacts import materialize, payload_of

    art = build(cache)
    other = ArtifactCache(tmp_path / "worker")
    moved = materialize(payload_of(art), other)
    assert moved.dir == other.root / KEY and other.lookup(KEY) is not None
