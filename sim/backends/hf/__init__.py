"""sim/backends/hf."""
