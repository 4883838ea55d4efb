"""sim/run."""
