"""The ``traitlab`` command line: parse, build a config, call the library, print."""

from sim.cli.main import main

__all__ = ["main"]
