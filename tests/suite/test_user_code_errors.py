"""A user's `python:` reference that cannot give a model is refused by the check, in the user's terms."""

from __future__ import annotations

from qbench.cli import main
from tests.helpers import write_suite

FACTORIES = """
import torch

NOT_A_FUNCTION = 3


def gives_a_lambda():
    return lambda x: x * 2


def gives_a_module():
    return torch.nn.Linear(64, 4)
"""


def _suite(folder, *sources: str):
    (folder / "models" / "odd.py").write_text(FACTORIES)
    models = "".join(f"""
          - name: m{i}
            source: "{source}"
            inputs: [{{shape: [1, 64]}}]""" for i, source in enumerate(sources))
    return write_suite(folder, f"""
        name: s
        models:{models}
        recipes: [{{name: fp32, kind: fp32}}]
        """)


def test_bad_references_are_named_before_anything_is_built(suite_dir, capsys):
    path = _suite(suite_dir, "python:../../../../etc/passwd:root", "python:models/odd.py:NOT_A_FUNCTION",
                  "python:models/odd.py:gives_a_module")
    code = main(["run", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"{path}:4: models[0].source: '../../../../etc/passwd' is neither a .py file nor a dotted module name: "
            "a module path must be a .py file (relative to the suite) or a dotted module name like package.module") in err
    # paths in a suite are resolved from its folder once, so messages show where qbench looked
    assert f"{path}:7: models[1].source: {suite_dir}/models/odd.py: 'NOT_A_FUNCTION' is not a function (it is of type int)" in err
    assert "package' argument" not in err and "Traceback" not in err


def test_a_factory_that_returns_no_module_fails_the_check(suite_dir, capsys):
    path = _suite(suite_dir, "python:models/odd.py:gives_a_lambda", "python:models/odd.py:gives_a_module")
    code = main(["run", str(path), "--check"])
    err = capsys.readouterr().err
    assert code == 2
    assert (f"{path}:4: models[0].source: the source of model 'm0' gave a function gives_a_lambda.<locals>.<lambda>, "
            "not a torch.nn.Module: a factory returns the model itself (e.g. `return Net()`)") in err
    assert "models[1]" not in err
