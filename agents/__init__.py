"""Who agents are and how they speak: personas, prompts, memory. Pure; no model calls."""

__all__: list[str] = []
