"""Settings of the transformers backend, as one validated object.

:class:`HFConfig` is what :class:`~sim.backends.hf.backend.HFBackend` is built from. Its
defaults are the run's defaults (:class:`~sim.scenario.spec.RunConfig`), so a backend opened
by hand batches like one opened by ``traitlab run``.

Example:
    >>> HFConfig(dtype="float32", batch_rows=8).batch_tokens == RunConfig().batch_tokens
    True
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from sim.errors import BackendError
from sim.scenario.spec import RunConfig

__all__ = ["DTYPES", "HFConfig"]

DTYPES = ("auto", "bfloat16", "float32", "float16")
_RUN = RunConfig.model_fields


class HFConfig(BaseModel):
    """How the transformers backend loads and batches a model.

    Attributes:
        model: a local model folder (written by ``save_pretrained``); ``None`` is the
            embedded SmolLM2.
        dtype: ``"auto"`` (bf16 on GPUs and on CPUs with native bf16, else fp32),
            ``"bfloat16"``, ``"float32"`` or ``"float16"``.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        batch_tokens: budget on padded tokens (prompt + new/option tokens) per batch.
        batch_rows: most rows per batch.
        threads: torch CPU threads; ``None`` is ``os.cpu_count()``.
        prefix_cache_mib: memory for prompt KV kept between the batches of a step (a later
            prompt extending a kept one reuses it); 0 turns it off.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | Path | None = _RUN["model"].default
    dtype: Literal["auto", "bfloat16", "float32", "float16"] = _RUN["dtype"].default
    device: str = _RUN["device"].default
    batch_tokens: Annotated[int, Field(ge=1)] = _RUN["batch_tokens"].default
    batch_rows: Annotated[int, Field(ge=1)] = _RUN["batch_rows"].default
    threads: Annotated[int, Field(ge=1)] | None = None
    prefix_cache_mib: Annotated[int, Field(ge=0)] = _RUN["prefix_cache_mib"].default

    @classmethod
    def from_run(cls, run: RunConfig) -> HFConfig:
        """The backend settings a run config asks for."""
        return cls(model=run.model, dtype=run.dtype, device=run.device,
                   batch_tokens=run.batch_tokens, batch_rows=run.batch_rows,
                   prefix_cache_mib=run.prefix_cache_mib)

    @classmethod
    def build(cls, base: HFConfig | str | Path | None = None, **settings: Any) -> HFConfig:
        """A validated config from ``base`` (a config, or a model folder) and overrides.

        Raises:
            BackendError: a setting is unknown or out of range (one line, with the fix).
        """
        values = base.model_dump() if isinstance(base, HFConfig) else {"model": base}
        try:
            return cls.model_validate({**values, **settings})
        except ValidationError as exc:
            err = exc.errors()[0]
            name = ".".join(str(part) for part in err["loc"]) or "settings"
            value = err.get("input")
            raise BackendError(
                f"HF backend setting {name}={value!r}: {err['msg']}. Fix: see HFConfig "
                f"(dtype one of {', '.join(DTYPES)}; batch budgets at least 1)."
            ) from exc
