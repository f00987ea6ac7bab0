"""The layering rule (docs/architecture.md): ``spaces < methods < harness.{utils < data < spec < engine < runs
< evidence} < reports < harness.cli``, checked by the import-linter contract in ``pyproject.toml``, and
first-party imports only at the top of a module."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("spaces", "methods", "harness", "reports")
LINT = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")


def _lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([LINT, "--config", str(root / "pyproject.toml"), "--no-cache"], cwd=root, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def tree_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The four packages and pyproject.toml, copied: a place to break the rule without touching the tree."""
    root = tmp_path_factory.mktemp("layers")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.json", "*.csv"))
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


def test_the_tree_keeps_the_layers(tree_copy: Path) -> None:
    proc = _lint(tree_copy)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "1 kept, 0 broken" in proc.stdout


@pytest.mark.parametrize(("module", "upward"), [
    ("spaces/ops.py", "methods.base"),                # the search space must not know the methods
    ("harness/engine/health.py", "harness.runs.run"),  # the engine must not know the run folder
    ("harness/spec/sweeps.py", "harness.runs.run"),    # the old sweeps -> run dependency
    ("harness/evidence/stats.py", "reports.common"),   # evidence below the reports
    ("reports/common.py", "harness.cli.main"),         # the command line is the top layer
])
def test_an_upward_import_breaks_the_contract(tree_copy: Path, module: str, upward: str) -> None:
    path = tree_copy / module
    original = path.read_text()
    try:
        path.write_text(original + f"\nimport {upward}  # noqa: E402,F401\n")
        proc = _lint(tree_copy)
    finally:
        path.write_text(original)
    assert proc.returncode != 0
    importer = module.removesuffix(".py").replace("/", ".")
    assert f"{importer} -> {upward}" in proc.stdout, proc.stdout


def _inner_first_party_imports(path: Path, root: Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text())
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if not node.level else ["."]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            if any(n == "." or n.split(".")[0] in PACKAGES for n in names):
                found.append(f"{path.relative_to(root)}:{node.lineno}")
    return found


def test_first_party_imports_are_at_module_top() -> None:
    """Imports inside functions are only for optional third-party packages (a lazy first-party import
    hides a dependency from the contract's reader)."""
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    assert files
    assert [hit for p in files for hit in _inner_first_party_imports(p)] == []


def test_the_inner_import_check_can_fail(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import os\n\n\ndef f():\n    import numpy\n    from harness.spec import runspec\n"
                                   "    return runspec, numpy, os\n")
    assert _inner_first_party_imports(tmp_path / "m.py", tmp_path) == ["m.py:6"]
