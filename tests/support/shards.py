"""Reading a run directory's per-step shards as they are on disk (no lineage, no schema fill)."""

from __future__ import annotations

from pathlib import Path

import polars as pl


def read_shards(run_dir: Path, folder: str) -> pl.DataFrame:
    """Every ``folder/*.parquet`` shard of ``run_dir``, in file order, as one frame."""
    return pl.concat([pl.read_parquet(p) for p in sorted((run_dir / folder).glob("*.parquet"))])
