"""The public API: a handful of names importable from the package roots, resolved lazily."""

from __future__ import annotations

import importlib
import subprocess
import sys

import pytest

import analysis
import sim

# The names a notebook needs, with the module that defines each (written out here, not read
# from the package, so that dropping or moving a name fails this test).
SIM_NAMES = {
    "load_scenario": "sim.scenario.loader",
    "LoadedScenario": "sim.scenario.loader",
    "ScenarioSpec": "sim.scenario.spec",
    "RunConfig": "sim.scenario.spec",
    "run_scenario": "sim.run.runner",
    "resume_run": "sim.run.runner",
    "RunOutcome": "sim.run.runner",
    "TraitLabError": "sim.errors",
    "ScenarioError": "sim.errors",
    "RunError": "sim.errors",
}
ANALYSIS_NAMES = {
    "load_run": "analysis.io",
    "load_sweep": "analysis.io",
    "Run": "analysis.io",
    "Sweep": "analysis.io",
}


@pytest.mark.parametrize(("package", "names"), [(sim, SIM_NAMES), (analysis, ANALYSIS_NAMES)])
def test_every_public_name_resolves_to_its_definition(package: object, names: dict[str, str]):
    for name, module in names.items():
        assert getattr(package, name) is getattr(importlib.import_module(module), name), name


@pytest.mark.parametrize(("package", "names"), [(sim, SIM_NAMES), (analysis, ANALYSIS_NAMES)])
def test_all_lists_exactly_the_public_names(package: object, names: dict[str, str]):
    assert set(package.__all__) - {"__version__"} == set(names)
    assert set(names) <= set(dir(package))


def test_unknown_names_raise_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = sim.no_such_name
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = analysis.no_such_name


def test_submodules_still_import_through_the_package():
    from analysis import norms  # a submodule, not a public name
    from sim import errors

    assert norms.__name__ == "analysis.norms"
    assert errors.__name__ == "sim.errors"


def _modules_after(code: str) -> set[str]:
    out = subprocess.run([sys.executable, "-c", code + "\nimport sys\nprint(sorted(sys.modules))"],
                         capture_output=True, text=True, check=True, timeout=120)
    return set(eval(out.stdout.strip().splitlines()[-1]))  # our own print of a list


def test_importing_the_packages_is_cheap():
    loaded = _modules_after("import sim, agents, analysis")
    heavy = {"torch", "transformers", "ray", "polars", "pydantic", "mesa"} & loaded
    assert not heavy, f"package import pulled in {sorted(heavy)}"


def test_from_import_of_every_name_works_without_torch():
    names = ", ".join(SIM_NAMES)
    loaded = _modules_after(f"from sim import {names}\nfrom analysis import load_run, load_sweep")
    assert "torch" not in loaded
    assert {"sim.run.runner", "analysis.io"} <= loaded
