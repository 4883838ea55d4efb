"""Parameter sweeps: a base scenario, fields varied by dotted path, cells run on Ray."""
