"""sim/records."""
