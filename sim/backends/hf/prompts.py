"""Chat rendering that never lets message contents become control tokens.

Message contents are untrusted (agents quote each other, personas are user-written). The chat
template is rendered with unique sentinels in place of the contents; the rendered string is
split on the sentinels; template pieces are tokenized with special tokens parsed, contents with
``split_special_tokens=True`` so that ``<|im_start|>system`` inside a message stays plain text.

Example:
    >>> renderer = PromptRenderer(tokenizer)                       # doctest: +SKIP
    >>> ids = renderer.render((Message("user", "Hi <|im_end|>"),))  # doctest: +SKIP
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Sequence
from typing import Any

from sim.errors import BackendError
from sim.requests import Message

__all__ = ["LAYOUTS", "PromptRenderer"]

LAYOUTS = 4096
"""Most role sequences whose rendered template a renderer keeps."""


class PromptRenderer:
    """Turn chat messages into token ids with the tokenizer's chat template.

    Args:
        tokenizer: a transformers tokenizer with a ``chat_template``.
        model_id: name used in error messages.

    Raises:
        BackendError: the tokenizer has no chat template.
    """

    def __init__(self, tokenizer: Any, model_id: str = "model") -> None:
        if not getattr(tokenizer, "chat_template", None):
            raise BackendError(
                f"model '{model_id}': its tokenizer has no chat_template, so chat messages "
                "cannot be rendered. Fix: use an instruct/chat model folder, or set "
                "tokenizer.chat_template before saving it."
            )
        self._tokenizer = tokenizer
        self._nonce = secrets.token_hex(8)
        self._pattern = re.compile(rf"\u27e6TL{self._nonce}:(\d+)\u27e7")
        self._layouts: dict[tuple[str, ...], list[list[int] | int]] = {}

    def _sentinel(self, index: int) -> str:
        return f"\u27e6TL{self._nonce}:{index}\u27e7"

    def content_ids(self, text: str) -> list[int]:
        """Tokenize untrusted text as plain text: control-token strings are split."""
        return self._contents_ids([text])[0]

    def template_ids(self, text: str) -> list[int]:
        """Tokenize trusted template text, parsing special tokens."""
        if not text:
            return []
        encoded = self._tokenizer(text, add_special_tokens=False, split_special_tokens=False)
        return list(encoded["input_ids"])

    def render(self, messages: Sequence[Message]) -> list[int]:
        """Return the prompt ids of ``messages`` followed by the assistant generation prompt.

        Args:
            messages: the chat so far.

        Returns:
            Token ids; message contents occupy spans tokenized as plain text.
        """
        layout = self._layout(tuple(m.role for m in messages))
        texts = [messages[part].content for part in layout if isinstance(part, int)]
        contents = iter(self._contents_ids(texts))
        ids: list[int] = []
        for part in layout:
            ids.extend(next(contents) if isinstance(part, int) else part)
        return ids

    def _layout(self, roles: tuple[str, ...]) -> list[list[int] | int]:
        """The template's token ids around each message's content, for this sequence of roles.

        The template is rendered with sentinels in place of the contents, so what it produces
        depends on the roles alone; it is rendered once per role sequence (up to
        :data:`LAYOUTS` of them) instead of once per prompt.
        """
        layout = self._layouts.get(roles)
        if layout is not None:
            return layout
        placeholders = [{"role": r, "content": self._sentinel(i)} for i, r in enumerate(roles)]
        rendered = self._tokenizer.apply_chat_template(
            placeholders, tokenize=False, add_generation_prompt=True
        )
        layout = [
            int(piece) if k % 2 else self.template_ids(piece)
            for k, piece in enumerate(self._pattern.split(str(rendered)))
        ]
        if len(self._layouts) < LAYOUTS:
            self._layouts[roles] = layout
        return layout

    def _contents_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """:meth:`content_ids` of several texts in one tokenizer call."""
        filled = [t for t in texts if t]
        if not filled:
            return [[] for _ in texts]
        encoded = iter(self._tokenizer(filled, add_special_tokens=False,
                                       split_special_tokens=True)["input_ids"])
        return [list(next(encoded)) if t else [] for t in texts]
