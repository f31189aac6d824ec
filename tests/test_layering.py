"""Dependencies go one way: ``neurons`` <- ``agents`` <- ``experiments`` <- ``train_agent.py``, and ``envs`` imports
no other project package. Every import of every module counts, including those inside functions."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "neurons": {"envs", "agents", "experiments", "train_agent"},
    "envs": {"neurons", "agents", "experiments", "train_agent"},
    "agents": {"experiments", "train_agent"},
    "experiments": {"train_agent"},
}


def imported_packages(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, top-level package)`` of every absolute import in ``tree``, wherever it stands."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module.split(".")[0]))
    return found


def upward_imports(package: str) -> list[str]:
    offenders = []
    for path in sorted((ROOT / package).rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for line, name in imported_packages(tree):
            if name in FORBIDDEN[package]:
                offenders.append(f"{path.relative_to(ROOT)}:{line} imports {name}")
    return offenders


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_no_upward_imports(package: str) -> None:
    assert list((ROOT / package).rglob("*.py")), f"{package}/ holds no modules"
    offenders = upward_imports(package)
    assert not offenders, f"{package} imports an upper layer:\n" + "\n".join(offenders)


def test_no_relative_imports() -> None:
    """Relative imports would escape the check above; the project writes absolute ones."""
    relative = [
        f"{path.relative_to(ROOT)}:{node.lineno}"
        for package in FORBIDDEN
        for path in sorted((ROOT / package).rglob("*.py"))
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.level > 0
    ]
    assert not relative, "relative imports: " + ", ".join(relative)


def test_the_check_sees_imports_inside_functions() -> None:
    tree = ast.parse("def f():\n    from experiments.cli import main\n    import train_agent\n")
    assert imported_packages(tree) == [(2, "experiments"), (3, "train_agent")]


def test_entry_point_is_the_experiments_command_line() -> None:
    """``train_agent.py`` (and the ``spikerl`` script) only starts :func:`experiments.cli.main`."""
    import train_agent
    from experiments import cli

    assert train_agent.main is cli.main
