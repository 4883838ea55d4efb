"""TraitLab's simulation engine: scenario spec -> batched run -> parquet records."""

__all__ = ["__version__"]

__version__ = "0.1.0"
