"""sim/probe."""
