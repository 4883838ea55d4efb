"""The package version, in the lowest layer so the recorder can stamp it on every run."""

__version__ = "0.3.0"
