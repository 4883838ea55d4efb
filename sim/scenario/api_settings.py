"""How a run reaches an OpenAI-compatible server (``RunConfig.api``), as plain settings.

The scenario layer holds only what a run config or a sweep's ``run:`` block may say; the
backend (:class:`sim.backends.openai.OpenAIConfig`) is built from these fields. The API key is
never a setting: ``api_key_env`` names the environment variable that holds it, so a manifest
that records these settings cannot contain the key.

Example:
    >>> OpenAISettings(base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_KEY").retries
    4
    >>> looks_like_key("sk-abc123"), looks_like_key("OPENAI_API_KEY")
    (True, False)
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field, field_validator

from sim.scenario.fields import Strict

__all__ = ["OpenAISettings", "looks_like_key"]

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
_KEY_PREFIXES = ("sk-", "sk_", "hf_", "gsk_", "xai-", "pk-", "key-")


def looks_like_key(value: str) -> bool:
    """Whether ``value`` is rather a secret than a variable name.

    Variable names are short words joined by underscores (``OPENAI_API_KEY``); keys are long
    runs of mixed letters and digits, or carry a provider prefix (``sk-...``).
    """
    if value.lower().startswith(_KEY_PREFIXES) or not _ENV_NAME.fullmatch(value):
        return True
    longest = max((len(part) for part in value.split("_")), default=0)
    return longest >= 24 and any(c.isdigit() for c in value)


class OpenAISettings(Strict):
    """The server a ``backend: openai`` run talks to, and how politely.

    Attributes:
        base_url: the server's OpenAI base URL (``http://127.0.0.1:8000/v1``).
        model: the model name to request (default: the one model the server lists).
        api_key_env: the NAME of the environment variable holding the API key (none: no key).
        concurrency: most requests in flight at once.
        timeout_s: per-request timeout in seconds.
        retries: retries of a request after a timeout, connection error, 429 or 5xx.
        requests_per_minute: client-side request rate limit (none: unlimited).
        tokens_per_minute: client-side token rate limit (none: unlimited).
        price_in_per_million: price of a million prompt tokens (for the cost estimate).
        price_out_per_million: price of a million completion tokens.
    """

    base_url: Annotated[str, Field(min_length=1, max_length=2000)]
    model: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    api_key_env: str | None = None
    concurrency: Annotated[int, Field(ge=1, le=4096)] = 16
    timeout_s: Annotated[float, Field(gt=0)] = 120.0
    retries: Annotated[int, Field(ge=0, le=100)] = 4
    requests_per_minute: Annotated[float, Field(gt=0)] | None = None
    tokens_per_minute: Annotated[float, Field(gt=0)] | None = None
    price_in_per_million: Annotated[float, Field(ge=0)] | None = None
    price_out_per_million: Annotated[float, Field(ge=0)] | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not re.match(r"https?://[^/\s]", value.strip()):
            raise ValueError("is not an http(s) URL. Fix: use e.g. http://127.0.0.1:8000/v1")
        return value.strip()

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        # The message never repeats the value: it may be the key itself.
        if value is not None and looks_like_key(value):
            raise ValueError(
                "must be the NAME of an environment variable that holds the key, not the key "
                "(value not shown). Fix: export MY_API_KEY=<key> and pass MY_API_KEY")
        return value
