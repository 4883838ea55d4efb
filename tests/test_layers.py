"""The layering rule of docs/architecture.md, enforced on every import in the product.

A module may import from its own layer and the layers below it, never from a layer above.
Imports under ``if TYPE_CHECKING:`` are annotations only and are exempt; every other import,
function-local ones included, counts.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Lowest first. A module belongs to the longest prefix that names it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("sim.errors", "sim.version", "sim.lazy", "sim.closing"),
    ("sim.requests",),
    ("sim.scenario", "agents.instruments"),  # instruments are data a scenario names
    ("agents",),
    ("sim.backends",),
    ("sim.engine", "sim.records", "sim.executors"),
    ("sim.run", "sim.probe", "sim.sweep"),
    ("analysis",),
    ("sim.cli", "sim"),  # the package root is the public facade, above everything it re-exports
)


def layer_of(module: str) -> int | None:
    """The layer index of a dotted module name, or None for a third-party module."""
    best: tuple[int, int] | None = None
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (
                    best is None or len(prefix) > best[1]):
                best = (index, len(prefix))
    return None if best is None else best[0]


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def imported_modules(source: str, module: str, *, is_package: bool = False
                     ) -> list[tuple[int, str]]:
    """(line, module) of every runtime import in ``source`` (relative imports resolved)."""
    tree = ast.parse(source)
    skip = _type_checking_lines(tree)
    package = module if is_package else module.rsplit(".", 1)[0]
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((node.lineno, base))
            # ``from sim import x`` may name a submodule: judge it as ``sim.x``.
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names
                         if layer_of(f"{base}.{alias.name}") != layer_of(base))
    return found


def violations(source: str, module: str, *, is_package: bool = False) -> list[str]:
    """Every import in ``source`` (the text of ``module``) that reaches a higher layer."""
    own = layer_of(module)
    assert own is not None, module
    out = []
    for line, target in imported_modules(source, module, is_package=is_package):
        layer = layer_of(target)
        if layer is not None and layer > own:
            out.append(f"{module}:{line} imports {target} "
                       f"(layer {LAYERS[layer][0]} is above {LAYERS[own][0]})")
    return out


def product_modules() -> list[tuple[str, Path]]:
    modules = []
    for top in ("sim", "agents", "analysis"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules.append((".".join(parts), path))
    return modules


def _violations_of(name: str, path: Path) -> list[str]:
    return violations(path.read_text(encoding="utf-8"), name,
                      is_package=path.name == "__init__.py")


def test_every_product_module_has_a_layer() -> None:
    assert all(layer_of(name) is not None for name, _ in product_modules())


def test_no_import_reaches_a_higher_layer() -> None:
    problems = [v for name, path in product_modules() for v in _violations_of(name, path)]
    assert problems == []


@pytest.mark.parametrize(("module", "source"), [
    ("agents.agent", "from sim.backends.scripted import ScriptedBackend\n"),
    ("sim.scenario.spec", "import sim.engine.loop\n"),
    ("sim.engine.loop", "def f():\n    from analysis.io import load_run\n"),
    ("sim.records.recorder", "from ..cli import main\n"),
    ("sim.run.runner", "from sim import cli\n"),
])
def test_a_forbidden_import_is_caught(module: str, source: str) -> None:
    assert len(violations(source, module)) == 1


@pytest.mark.parametrize(("module", "source"), [
    ("agents.agent", "from sim.requests import ScoreRequest\nfrom sim.scenario.spec import X\n"),
    ("sim.engine.loop", "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                        "    from sim.run.runner import run_scenario\n"),
    ("sim.cli.main", "from analysis.io import load_run\nfrom sim.run import runner\n"),
    ("sim.engine.replica", "from . import groups\nimport numpy\n"),
    ("sim.engine.loop", "from .replica import Replica\n"),
])
def test_allowed_imports_pass(module: str, source: str) -> None:
    assert violations(source, module) == []
