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
