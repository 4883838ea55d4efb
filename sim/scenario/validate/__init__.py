"""sim/scenario/validate."""
