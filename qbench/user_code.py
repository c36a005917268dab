"""Loading the user's own Python (`FILE.py:NAME` or `package.module:NAME`): factories, calibration
and dataset functions all come through here, so a user's module is imported once and fingerprinted one way."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType

from qbench.hashing import file_sha256

_DOTTED = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def split_callable(ref: str) -> tuple[str, str]:
    target, sep, attr = ref.rpartition(":")
    if not sep or not target or not attr:
        raise ValueError(f"expected FILE.py:NAME or package.module:NAME, got {ref!r}")
    return target, attr


def resolve_ref(ref: str, base_dir: Path) -> str:
    """`FILE.py:NAME` with FILE relative to the suite's folder made relative to nothing (done once, at load)."""
    target, sep, attr = ref.rpartition(":")
    if sep and target.endswith(".py") and not Path(target).expanduser().is_absolute():
        return f"{base_dir / target}:{attr}"
    return ref


def import_target(target: str) -> ModuleType:
    """Import a .py file (its path already resolved from the suite's folder) or a dotted module name."""
    if target.endswith(".py"):
        path = Path(target).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        name = "qbench_user_" + hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:12]
        if name in sys.modules:
            return sys.modules[name]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module
    if not _DOTTED.fullmatch(target):
        raise ValueError(f"{target!r} is neither a .py file nor a dotted module name: a module path must be "
                         "a .py file (relative to the suite) or a dotted module name like package.module")
    return importlib.import_module(target)


def load_callable(ref: str):
    target, attr = split_callable(ref)
    module = import_target(target)
    if not hasattr(module, attr):
        public = sorted(n for n, v in vars(module).items() if callable(v) and not n.startswith("_"))
        raise AttributeError(f"{target} has no {attr!r} (it defines: {', '.join(public) or 'nothing callable'})")
    return getattr(module, attr)


def check_callable(ref: str) -> str | None:
    try:
        found = load_callable(ref)
        if not callable(found):
            target, attr = split_callable(ref)
            return f"{target}: {attr!r} is not a function (it is of type {type(found).__name__})"
    except (ValueError, FileNotFoundError, AttributeError, ModuleNotFoundError) as exc:
        return str(exc)
    except Exception as exc:  # the user's module raised while importing
        return f"importing {ref} failed: {type(exc).__name__}: {exc}"
    return None


def callable_fingerprint(ref: str) -> str:
    target, attr = split_callable(ref)
    if target.endswith(".py"):  # the file is what runs: hashed without importing it (and torch with it)
        path = Path(target).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such file")
        return f"python:{file_sha256(path)}:{attr}"
    module = import_target(target)
    source = getattr(module, "__file__", None)
    digest = file_sha256(Path(source)) if source else target
    return f"python:{digest}:{attr}"
