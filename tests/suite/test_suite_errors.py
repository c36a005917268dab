"""Every kind of bad suite is refused before the first cell, with exit 2 and file:line:key."""

from __future__ import annotations

import pytest

from qbench.cli import main
from tests.helpers import write_suite

def run_cli(capsys, *args) -> tuple[int, str]:
    code = main(["run", *map(str, args), "--check"])
    return code, capsys.readouterr().err


def test_design_card_example_loads_as_written(capsys):
    from tests.helpers import REPO

    code, err = run_cli(capsys, REPO / "suites" / "smoke.yaml")
    assert code == 0, err


def test_malformed_yaml_names_file_line_and_column(suite_dir, capsys):
    path = write_suite(suite_dir, "name: x\nmodels:\n  - name: a\n   source: b\n")
    code, err = run_cli(capsys, path)
    assert code == 2
    assert f"{path}:4:4: malformed YAML: expected <block end>, but found '<block mapping start>'" in err


def test_duplicate_key_is_an_error_not_a_silent_overwrite(suite_dir, capsys):
    path = write_suite(suite_dir, "name: x\nname: y\n")
    code, err = run_cli(capsys, path)
    assert code == 2 and f"{path}:2:1: malformed YAML: duplicate key 'name' (first at line 1)" in err


def test_unknown_key_names_line_key_and_the_allowed_keys(suite_dir, capsys):
    path = write_suite(suite_dir, f"""
        name: s
        models:
          - name: tiny_mlp
            sourc: python:models/tiny.py:tiny_mlp
            inputs: [{{shape: [1, 64]}}]
        recipes: [{{name: fp32, kind: fp32}}]
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    assert f"{path}:4: models[0].sourc: unknown key 'sourc' (allowed: name, source, inputs, weights, task, output, calibration, dataset, metric, generate)" in err
    assert f"{path}:3: models[0]: missing required key 'source'" in err


def test_bad_values_and_unknown_union_kind(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - name: tiny_mlp
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
        recipes: [{name: fp32, kind: fp32}]
        calibration: {kind: randm, samples: 16}
        benchmark: {warmup: -1}
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    assert f"{path}:7: calibration.kind: unknown kind 'randm'; choose one of: random, npz, python" in err
    assert f"{path}:8: benchmark.warmup: should be greater than or equal to 0 (got -1)" in err


def test_missing_files_unknown_sources_factories_recipes_devices(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - name: a
            source: python:models/tiny.py:tiny_cn
            inputs: [{shape: [1, 64]}]
          - name: b
            source: python:models/nope.py:f
            inputs: [{shape: [1, 64]}]
          - name: c
            source: onnx:foo
            inputs: [{shape: [1, 64]}]
          - name: d
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
            weights: missing.pt
        recipes:
          - {name: p, kind: ptq, per_chanel: true}
          - {name: q, kind: magic}
          - {name: q, kind: fp32}
        devices: [host, pixel9]
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    lines = [ln.strip() for ln in err.splitlines()]
    expected = [
        f"{path}:4: models[0].source: {suite_dir}/models/tiny.py has no 'tiny_cn' (it defines: tiny_cnn, tiny_mlp)",
        f"{path}:7: models[1].source: {suite_dir}/models/nope.py: no such file",
        f"{path}:10: models[2].source: unknown source kind 'onnx'; choose one of: hf, llama, pt2, python, timm, torchvision",
        f"{path}:15: models[3].weights: {suite_dir}/missing.pt: no such file",
        f"{path}:17: recipes[0].per_chanel: unknown key 'per_chanel' (allowed: per_channel, skip)",
        f"{path}:18: recipes[1].kind: unknown recipe kind 'magic'; choose one of: dynamic, eager, fp32, int4-weight, ptq, qat",
        f"{path}:19: recipes[2].name: duplicate name 'q' (also recipes[1])",
    ]
    for line in expected:
        assert line in lines, f"missing: {line}\n--- got:\n{err}"
    # the bundled profiles are known wherever the suite is
    assert any(ln.startswith(f"{path}:20: devices[1]: no device profile 'pixel9'; known: galaxy-s24, host, pixel8")
               for ln in lines)


def test_quantization_without_calibration_is_refused(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - name: tiny_mlp
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
        recipes:
          - {name: int8, kind: ptq}
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    assert (f"{path}:7: recipes[0]: recipe 'int8' (kind ptq) needs calibration data, and model(s) 'tiny_mlp' "
            "have none: add e.g. `calibration: {kind: random, samples: 32}` to the suite or to the model") in err


def test_bad_input_shape_is_caught_by_the_preflight_forward_pass(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - name: tiny_mlp
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 3, 32, 32]}]
        recipes: [{name: fp32, kind: fp32}]
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    assert (f"{path}:5: models[0].inputs: model 'tiny_mlp' does not accept inputs float32[1, 3, 32, 32]: "
            "mat1 and mat2 shapes cannot be multiplied") in err


@pytest.mark.parametrize("shape", ["[]", "[1, 0]", "[1, -3]"])
def test_non_positive_or_empty_shapes(suite_dir, capsys, shape):
    path = write_suite(suite_dir, f"""
        name: s
        models:
          - name: m
            source: python:models/tiny.py:tiny_mlp
            inputs: [{{shape: {shape}}}]
        recipes: [{{name: fp32, kind: fp32}}]
        """)
    code, err = run_cli(capsys, path)
    assert code == 2 and f"{path}:5: models[0].inputs[0].shape" in err


def test_missing_suite_file(tmp_path, capsys):
    code, err = run_cli(capsys, tmp_path / "nope.yaml")
    assert code == 2 and f"qbench: {tmp_path / 'nope.yaml'}: no such file" in err


def test_unknown_device_on_the_command_line(suite_dir, capsys):
    path = write_suite(suite_dir, f"""
        name: s
        models:
          - name: m
            source: python:models/tiny.py:tiny_mlp
            inputs: [{{shape: [1, 64]}}]
        recipes: [{{name: fp32, kind: fp32}}]
        """)
    code = main(["run", str(path), "--device", "nokia3310", "--check"])
    err = capsys.readouterr().err
    assert code == 2 and "--device nokia3310: no device profile 'nokia3310'" in err


def test_precision_and_max_trials_are_checked_with_their_line(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - {name: tiny_mlp, source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
        recipes: [{name: fp32, kind: fp32}]
        benchmark:
          trials: 3
          precision: "2"
          max_trials: 2
        """)
    code, err = run_cli(capsys, path)
    assert code == 2
    assert f"{path}:7:" in err and "write a percentage like '2%'" in err
    path = write_suite(suite_dir, """
        name: s
        models:
          - {name: tiny_mlp, source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
        recipes: [{name: fp32, kind: fp32}]
        benchmark: {trials: 3, precision: 2%, max_trials: 2}
        """)
    code, err = run_cli(capsys, path)
    assert code == 2 and "max_trials must be >= trials" in err
