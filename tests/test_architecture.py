"""The package's layers hold (docs/architecture.md), checked by import-linter's own contracts
(``[tool.importlinter]`` in pyproject.toml): no upward import, no import between independent
siblings, no cycle between the modules of any package. Lazy imports inside functions count, so
hiding an import in a function cannot dodge a contract; the few lazy imports kept (torch, Ray
on paths that do not need them) each say so in a comment.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

from conftest import ROOT

PACKAGE = ROOT / "polychromic"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    """``lint-imports`` on the package found under ``root`` (its pyproject.toml's contracts)."""
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--config", str(root / "pyproject.toml"),
                           "--no-cache"], cwd=root, env=env, capture_output=True, text=True,
                          timeout=120)


def test_the_layers_contracts_hold() -> None:
    run = _lint_imports(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Contracts: 2 kept, 0 broken." in run.stdout


def test_an_upward_import_breaks_a_contract(tmp_path: Path) -> None:
    """A copy of the package with one wrong import (core → tuning, hidden in a function) fails
    with import-linter's own message naming it; so does a cycle between two review modules."""
    shutil.copytree(PACKAGE, tmp_path / "polychromic",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "polychromic" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\n\ndef _sneaky() -> None:\n"
                      "    from polychromic.tuning import cost  # noqa: F401\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "polychromic.core is not allowed to import polychromic.tuning" in run.stdout
    assert "polychromic.core.errors -> polychromic.tuning.cost" in run.stdout

    errors.write_text(errors.read_text().split("\n\ndef _sneaky")[0])
    terminal = tmp_path / "polychromic" / "review" / "format.py"
    terminal.write_text(terminal.read_text() + "\n\ndef _loop() -> None:\n"
                        "    from polychromic.review import terminal  # noqa: F401\n")
    run = _lint_imports(tmp_path)
    assert run.returncode != 0
    assert "No cycles are allowed in polychromic.review" in run.stdout


def test_no_module_at_the_top_level() -> None:
    """Every module lives in the subpackage of its layer; only ``__init__.py`` is at the top."""
    assert sorted(p.name for p in PACKAGE.glob("*.py")) == ["__init__.py"]
    packages = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file())
    assert "study" not in packages  # the name of the recipes' folder
    assert packages == ["core", "evaluation", "export", "metrics", "models", "review", "stats",
                        "store", "tasks", "training", "tuning"]


def test_every_lazy_internal_import_says_why() -> None:
    """An import of this package inside a function is kept only where it saves a heavy import
    (torch, Ray) and its comment line says so."""
    unexplained = []
    for path in sorted(PACKAGE.rglob("*.py")):
        lines = path.read_text().splitlines()
        tree = ast.parse("\n".join(lines))
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            for node in ast.walk(fn):
                if (isinstance(node, ast.ImportFrom) and node.module
                        and node.module.startswith("polychromic")
                        and not lines[node.lineno - 2].strip().startswith("# lazy:")):
                    unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not unexplained, unexplained
