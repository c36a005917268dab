"""Dataset problems that are known before the first cell: refused by `qbench run --check` with file:line."""

from __future__ import annotations

from qbench.cli import main
from tests.helpers import write_suite


def check(capsys, path) -> tuple[int, list[str]]:
    code = main(["run", str(path), "--check"])
    return code, [ln.strip() for ln in capsys.readouterr().err.splitlines()]


def test_missing_paths_unknown_names_and_bad_metrics(suite_dir, capsys):
    (suite_dir / "imgs").mkdir()
    path = write_suite(suite_dir, """
        name: s
        datasets:
          - {name: a, kind: npz, path: data/nope.npz}
          - {name: b, kind: imagefolder, path: pictures}
          - {name: c, kind: imagefolder, path: imgs}
          - {name: d, kind: python, fn: gen.py:load}
          - {name: a, kind: sklearn, load: digits}
        models:
          - name: m
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
            dataset: digitz
            metric: top1
          - name: n
            source: python:models/tiny.py:tiny_mlp
            inputs: [{shape: [1, 64]}]
            metric: python:metric.py:score
        recipes: [{name: fp32, kind: fp32}]
        """)
    code, lines = check(capsys, path)
    assert code == 2
    expected = [
        f"{path}:3: datasets[0].path: dataset 'a': {suite_dir}/data/nope.npz: no such file",
        f"{path}:4: datasets[1].path: dataset 'b': {suite_dir}/pictures: no such folder",
        f"{path}:5: datasets[2].path: dataset 'c': {suite_dir}/imgs has no class subfolders (one folder of images per class)",
        f"{path}:6: datasets[3].fn: dataset 'd': {suite_dir}/gen.py: no such file",
        f"{path}:7: datasets[4].name: duplicate name 'a' (also datasets[0])",
        f"{path}:12: models[0].dataset: unknown dataset 'digitz'; the suite defines: a, b, c, d, a",
        f"{path}:13: models[0].metric: a metric is python:FILE.py:FN (called as FN(outputs, labels)), got 'top1'",
        f"{path}:17: models[1].metric: {suite_dir}/metric.py: no such file",
        f"{path}:17: models[1].metric: model 'n' has a metric but no `dataset:` to score it on",
    ]
    for line in expected:
        assert line in lines, f"missing: {line}\n--- got:\n" + "\n".join(lines)


def test_dataset_schema_errors_name_the_key(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        datasets:
          - {name: a, kind: sklearn, load: mnist}
          - {name: b, kind: sklearn, load: digits, splits: {train: 0.8, eval: 0.5}}
          - {name: c, kind: csv, path: x.csv}
          - {name: d, kind: sklearn, load: digits, transform: resize}
        models:
          - {name: m, source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
        recipes: [{name: fp32, kind: fp32}]
        """)
    code, lines = check(capsys, path)
    assert code == 2
    text = "\n".join(lines)
    assert f"{path}:3: datasets[0].load: should be 'digits', 'iris', 'wine' or 'breast_cancer' (got 'mnist')" in lines, text
    assert (f"{path}:4: datasets[1].splits: fractions must add up to at most 1.0 (write counts as integers)") in lines, text
    assert f"{path}:5: datasets[2].kind: unknown kind 'csv'; choose one of: sklearn, imagefolder, npz, python, text" in lines, text
    assert (f"{path}:6: datasets[3].transform: unknown key 'transform' (allowed: name, splits, seed, kind, load)") in lines, text


def test_a_model_with_a_dataset_needs_no_calibration_section(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        datasets: [{name: digits, kind: sklearn, load: digits}]
        models:
          - {name: m, source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}], dataset: digits}
        recipes: [{name: p, kind: ptq}, {name: q, kind: qat}]
        """)
    code, lines = check(capsys, path)
    assert code == 0, lines


def test_skip_of_a_module_that_does_not_exist(suite_dir, capsys):
    path = write_suite(suite_dir, """
        name: s
        models:
          - {name: m, source: "python:models/tiny.py:tiny_mlp", inputs: [{shape: [1, 64]}]}
        recipes:
          - {name: p, kind: ptq, skip: {modules: ["2", "9"], module_types: [Linaer, ReLU]}}
        calibration: {kind: random, samples: 4}
        """)
    code, lines = check(capsys, path)
    assert code == 2
    assert f"{path}:5: recipes[0].skip.modules: '9' is no module of any model in the suite" in lines, lines
    assert f"{path}:5: recipes[0].skip.module_types: 'Linaer' is the type of no module in the suite's models" in lines, lines
    assert not any("'2'" in ln or "ReLU" in ln for ln in lines)
