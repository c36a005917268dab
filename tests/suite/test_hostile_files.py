"""Hostile suite and profile files: alias bombs, a flood of unknown keys, huge strings, binary junk.
Each gets a bounded, clear answer (exit 2), never a traceback or an expansion of what it encodes."""

from __future__ import annotations

import json

from qbench.cli import main
from qbench.suite import loader, yaml_nodes
from tests.helpers import write_suite

MODEL = """
models:
  - name: m
    source: python:models/tiny.py:tiny_mlp
    inputs: [{shape: [1, 64]%s}]
recipes: [{name: fp32, kind: fp32}]
"""


def check(capsys, path) -> tuple[int, str]:
    code = main(["run", str(path), "--check"])
    return code, capsys.readouterr().err


def alias_bomb(levels: int) -> str:
    """`levels` anchors, each a list of 9 references to the previous: 9**levels strings in ~600 bytes."""
    lines = ["lol:", "  - &L0 [a, a, a, a, a, a, a, a, a]"]
    lines += [f"  - &L{i} [{', '.join([f'*L{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_as_a_literal_value_is_quoted_briefly(suite_dir, capsys):
    # 9**7 = 4.8 M leaves: a repr() of it would be ~24 MB (the reported one was 9**9, 2 GB)
    path = suite_dir / "suite.yaml"
    path.write_text("name: s\n" + alias_bomb(7) + MODEL % ", dtype: *L6")
    code, err = check(capsys, path)
    assert code == 2
    lines = err.splitlines()
    dtype = next(ln for ln in lines if "models[0].inputs[0].dtype" in ln)
    assert "should be 'float32', 'float16'" in dtype and "(got [[[[…], […], […], […], …]" in dtype
    assert all(len(ln) <= loader.MAX_LINE + 2 for ln in lines) and len(err) < 2000


def test_many_unknown_keys_are_listed_up_to_a_cap_and_located_once(suite_dir, capsys, monkeypatch):
    builds = []
    original = yaml_nodes._entries

    def counting(node):
        if getattr(node, "_qbench_entries", None) is None:
            builds.append(len(node.value))
        return original(node)

    monkeypatch.setattr(yaml_nodes, "_entries", counting)
    keys = "".join(f"  k{i}: 1\n" for i in range(5000))
    path = write_suite(suite_dir, "name: s\n" + MODEL % "" + "benchmark:\n" + keys)
    code, err = check(capsys, path)
    assert code == 2
    listed = [ln for ln in err.splitlines() if "benchmark.k" in ln]
    assert len(listed) == loader.MAX_PROBLEMS
    assert f"{path}:9: benchmark.k0: unknown key 'k0' (allowed: warmup," in listed[0]
    assert err.rstrip().endswith(f"… and {5000 - loader.MAX_PROBLEMS} more problem(s) not listed; fix these first")
    assert builds.count(5000) == 1  # the 5000-key mapping was indexed once, not searched per problem


def test_huge_strings_and_unhashable_keys(suite_dir, capsys):
    path = write_suite(suite_dir, "name: s\n" + MODEL % "" + f"calibration: {{kind: random, samples: {'9x' * 50000}}}\n")
    code, err = check(capsys, path)
    assert code == 2 and "calibration.samples: should be a valid integer" in err and len(err) < 1000
    path = write_suite(suite_dir, "name: s\n? [a, b]\n: 1\n")
    code, err = check(capsys, path)
    assert code == 2 and err.strip() == f"qbench: {path}:2:3: malformed YAML: a key must be a plain value, not ['a', 'b']"


def test_binary_suite_is_one_clear_line(tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_bytes(b"name: s\ndescription: caf\xe9\n\x00\xff\xfe junk")
    code, err = check(capsys, path)
    assert code == 2
    assert err.strip() == f"qbench: {path}:2: not a UTF-8 text file (byte 0xe9 at offset 24); save it as UTF-8 YAML"


def test_devices_lists_the_good_profiles_and_reports_the_junk_one(tmp_path, capsys, monkeypatch):
    import qbench.devices.transports as transports

    monkeypatch.setattr(transports.shutil, "which", lambda name: None)  # no adb server started by this test
    profiles = tmp_path / "device_profiles"
    profiles.mkdir()
    (profiles / "junk.yaml").write_bytes(bytes(range(256)) * 4)
    (profiles / "bench.yaml").write_text("transport: host\ndescription: this machine again\n")
    code = main(["devices", "--profiles", str(profiles), "--json"])
    found = {d["name"]: d for d in json.loads(capsys.readouterr().out)}
    assert code == 0
    assert found["bench"]["state"] == "ok" and found["host"]["state"] == "ok"
    assert found["junk"]["state"] == "invalid profile"
    assert found["junk"]["summary"] == (f"{profiles / 'junk.yaml'}:2: not a UTF-8 text file (byte 0x80 at offset "
                                        "128); save it as UTF-8 YAML")
    # and a suite that names it says so, with the suite's line
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: s\n" + MODEL.replace("models/tiny.py", str(_tiny())) % "" + "devices: [junk]\n")
    code, err = check(capsys, suite)
    assert code == 2 and f"{suite}:8: devices[0]: {profiles / 'junk.yaml'}:2: not a UTF-8 text file" in err


def _tiny():
    from tests.helpers import REPO

    return REPO / "suites" / "models" / "tiny.py"


def test_a_file_far_larger_than_any_suite_is_refused_unread(tmp_path, capsys):
    path = tmp_path / "suite.yaml"
    path.write_text("name: s\nbenchmark:\n" + "".join(f"  k{i}: 1\n" for i in range(300_000)))  # ~3.5 MiB
    code, err = check(capsys, path)
    assert code == 2
    assert err.strip() == (f"qbench: {path}: {path.stat().st_size / 2**20:.1f} MiB is too large for a suite or "
                           "device profile (at most 2 MiB; data belongs in the files it names)")
