"""The documents in docs/ stay true: generated parts match, named files and names exist."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from sim.records import doc
from sim.records.schemas import COLUMN_DOCS, TABLES

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def test_every_schema_column_has_a_description():
    assert set(COLUMN_DOCS) == set(TABLES)
    for name, (_path, schema) in TABLES.items():
        described = COLUMN_DOCS[name]
        assert set(described) == set(schema), name
        assert all(text.strip() for text in described.values()), name


def test_records_md_is_the_generators_output():
    written = (DOCS / "records.md").read_text()
    assert written == doc.render(), "regenerate: python -m sim.records.doc > docs/records.md"


def test_render_names_every_column_with_its_type():
    text = doc.render()
    for _name, (_path, schema) in TABLES.items():
        for column, dtype in schema.items():
            assert f"| `{column}` | {dtype} |" in text


def test_render_refuses_an_undescribed_column(monkeypatch: pytest.MonkeyPatch):
    import polars as pl

    events = {**TABLES["events"][1], "undocumented": pl.Int32}
    monkeypatch.setitem(TABLES, "events", ("events/step-NNNNNN.parquet", events))
    with pytest.raises(KeyError, match="undocumented"):
        doc.render()


def test_a_recorded_run_writes_only_documented_files_and_keys(tmp_path: Path):
    import json

    from sim import RunConfig, run_scenario

    outcome = run_scenario(ROOT / "scenarios" / "prisoners_dilemma.yaml",
                           RunConfig(backend="scripted", out=tmp_path, steps=3))
    documented = {re.sub(r"/.*", "/", name) for name in doc.RUN_FILES}
    for file in outcome.path.iterdir():
        name = file.name + "/" if file.is_dir() else file.name
        assert name in documented, f"{name} is written but not in docs/records.md"
    manifest = json.loads((outcome.path / "manifest.json").read_text())
    assert set(manifest) <= set(doc.MANIFEST_KEYS)
    checkpoint = json.loads((outcome.path / "checkpoints" / "step-000003.json").read_text())
    assert set(checkpoint) == set(doc.CHECKPOINT_KEYS)


# Files the docs name that a reader creates: the worked example's new stage runner.
_TO_CREATE = {"sim/engine/stages/vote.py"}
_PATH = re.compile(r"`((?:sim|agents|analysis|tests|bench|scenarios|docs)/[\w./-]*)`")


@pytest.mark.parametrize("page", ["README.md", "CHANGELOG.md", *(
    f"docs/{p.name}" for p in sorted(DOCS.glob("*.md")))])
def test_every_repository_path_named_in_the_docs_exists(page: str):
    text = (ROOT / page).read_text()
    missing = [p for p in _PATH.findall(text)
               if "NNNNNN" not in p and p not in _TO_CREATE and not (ROOT / p.rstrip("/")).exists()]
    assert not missing, f"{page} names paths that do not exist: {missing}"


def test_docs_link_only_inside_the_repository():
    for page in ["README.md", *(f"docs/{p.name}" for p in DOCS.glob("*.md"))]:
        text = (ROOT / page).read_text()
        assert "](../" not in text and "`../" not in text, page
        assert "/work/" not in text, page


def test_architecture_lists_the_public_api():
    import analysis
    import sim

    text = (DOCS / "architecture.md").read_text()
    section = text.split("## Public API", 1)[1].split("\n## ", 1)[0]
    for name in [*sim.__all__, *analysis.__all__]:
        if name != "__version__":
            assert re.search(rf"`(?:sim\.|analysis\.)?{name}`", section), name
