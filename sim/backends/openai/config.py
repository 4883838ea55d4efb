"""Settings of the OpenAI-compatible backend (a frozen pydantic model).

The API key itself is never a setting: ``api_key_env`` names the environment variable that
holds it, read when the client starts, so no manifest, log or error can contain it.

Example:
    >>> cfg = OpenAIConfig(base_url="http://127.0.0.1:8000/v1", api_key_env="VLLM_KEY")
    >>> cfg.api_root
    'http://127.0.0.1:8000'
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = ["OpenAIConfig", "ScoringMode", "public_url"]

ScoringMode = Literal["auto", "logprobs", "constrained", "parsed"]


class OpenAIConfig(BaseModel):
    """How to reach and use an OpenAI-compatible server.

    Attributes:
        base_url: the server's OpenAI base URL (``http://host:8000/v1``; ``/v1`` is added if
            missing). vLLM's ``/tokenize`` is looked for next to ``/v1``.
        model: the model name to request; ``None`` takes the one model the server lists.
        api_key_env: name of the environment variable holding the API key (none: no key).
        concurrency: most requests in flight at once.
        timeout_s: per-request timeout.
        retries: retries of a request after a timeout, connection error, 429 or 5xx.
        backoff_s: first retry delay; it doubles per retry, with jitter, up to
            ``max_backoff_s``; a ``Retry-After`` header is honoured when it asks for longer.
        max_backoff_s: the longest delay between two tries.
        requests_per_minute: client-side request rate limit (none: unlimited).
        tokens_per_minute: client-side token rate limit, prompt estimate plus max tokens.
        price_in_per_million: price of a million prompt tokens, for the cost estimate.
        price_out_per_million: price of a million completion tokens.
        scoring: ``auto`` picks the best the server offers (log-probs, then constrained
            choice, then parsed generation); the others force one.
        extensions: use ``traitlab serve`` extensions (steering, native scoring) when offered.
        max_reasks: re-asks after a reply that names no option, in parsed scoring.
        choice_max_tokens: reply budget of constrained and parsed scoring.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str
    model: str | None = None
    api_key_env: str | None = None
    concurrency: int = Field(16, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    retries: int = Field(4, ge=0)
    backoff_s: float = Field(0.5, ge=0)
    max_backoff_s: float = Field(30.0, ge=0)
    requests_per_minute: float | None = Field(None, gt=0)
    tokens_per_minute: float | None = Field(None, gt=0)
    price_in_per_million: float | None = Field(None, ge=0)
    price_out_per_million: float | None = Field(None, ge=0)
    scoring: ScoringMode = "auto"
    extensions: bool = True
    max_reasks: int = Field(2, ge=0)
    choice_max_tokens: int = Field(16, ge=1)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"base_url '{public_url(value)}' is not an http(s) URL. "
                "Fix: use e.g. http://127.0.0.1:8000/v1"
            )
        return value.strip().rstrip("/")

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("_", "").isalnum():
            raise ValueError(
                "api_key_env must be the NAME of an environment variable (letters, digits, "
                "underscores), not the key. Fix: export MY_KEY=... and pass MY_KEY"
            )
        return value

    @property
    def api_root(self) -> str:
        """The URL the ``/v1/...`` and ``/tokenize`` paths are appended to."""
        return self.base_url[:-3] if self.base_url.endswith("/v1") else self.base_url

    def __repr_args__(self):  # type: ignore[no-untyped-def]  # noqa: ANN204
        """Show the base URL without credentials (a URL may embed a password)."""
        for name, value in super().__repr_args__():
            yield name, public_url(value) if name == "base_url" else value


def public_url(url: str) -> str:
    """``url`` without user, password, query or fragment (what manifests and logs may show)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))
