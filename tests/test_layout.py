"""Rules of the code's shape that no linter checks for us (import-linter checks the layers)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def imported_modules(path: Path) -> set[str]:
    """Every module a Python file imports (``from x import y`` counts ``x`` and ``x.y``)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_no_test_module_imports_another_test_module():
    # Shared builders live in tests/builders.py and fixtures in conftest.py; a test that
    # imports another test module also imports (and may collect) its tests and fixtures.
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for name in imported_modules(path):
            if name.startswith("tests.") and name.rsplit(".", 1)[-1].startswith("test_"):
                offenders.append(f"{path.relative_to(REPO)} imports {name}")
    assert offenders == []


LABELER = REPO / "labeler"
# The one unpickler: it reads the PyTorch weights file of the default backbone through an
# allow-list of harmless names (see its module docstring and tests/test_torch_weights.py).
UNPICKLER = LABELER / "embeddings" / "torch_weights.py"
UNPICKLING = ("pickle", "cPickle", "dill", "cloudpickle", "joblib", "shelve", "marshal")


def test_nothing_in_labeler_but_the_weights_reader_unpickles():
    # A pickle runs whatever code it names; our own data (heads, caches, backups) is stored
    # as plain arrays and JSON, and np.load is never allowed to unpickle.
    offenders = []
    for path in sorted(LABELER.rglob("*.py")):
        if path == UNPICKLER:
            continue
        where = path.relative_to(REPO)
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                modules = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                           else [node.module or ""])
                offenders += [f"{where}:{node.lineno} imports {m}" for m in modules
                              if m.split(".")[0] in UNPICKLING]
            elif isinstance(node, ast.keyword) and node.arg == "allow_pickle" and not (
                    isinstance(node.value, ast.Constant) and node.value.value is False):
                offenders.append(f"{where}:{node.value.lineno} allow_pickle is not False")
    assert offenders == []


MAX_MODULE_LINES = 400


def test_no_module_is_longer_than_400_lines():
    # Modules short and single-purpose (DESIGN.md): a long one is two jobs in one file.
    offenders = [f"{path.relative_to(REPO)}: {lines} lines"
                 for path in sorted(LABELER.rglob("*.py"))
                 if (lines := len(path.read_text().splitlines())) > MAX_MODULE_LINES]
    assert offenders == []


def test_no_module_imports_another_modules_private_names():
    # A leading underscore means "this module's business"; borrowing one couples two
    # modules through what neither promised (quality once reached into classifier's).
    offenders = []
    for path in sorted(LABELER.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level or "labeler" in (node.module or ""):
                offenders += [f"{path.relative_to(REPO)}:{node.lineno} imports {alias.name}"
                              for alias in node.names
                              if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert offenders == []


def test_the_import_contracts_hold():
    # The layers, a pure learning package, TensorFlow only in embeddings, no cycles: the
    # contracts in pyproject.toml, also run by .ci/run as `lint-imports`.
    # In a child process: import-linter configures logging with dictConfig, which disables
    # every logger that exists (labeler's included) for the rest of a pytest session.
    script = ("import sys; from importlinter.cli import lint_imports; "
              f"sys.exit(lint_imports(config_filename={str(REPO / 'pyproject.toml')!r}, "
              "no_cache=True))")
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
