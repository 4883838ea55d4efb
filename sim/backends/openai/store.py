"""Every server response of a run, keyed by a hash of its request, in an append-only file.

A resumed run answers a stored request from here instead of asking again, and a replay
answers every request from here with no server at all. The file is JSON lines, one
``{"key", "method", "path", "request", "response"}`` per successful response, flushed and
fsync'd at the end of each wave; a torn last line (a crash mid-write) is ignored on reading.
Requests never carry the API key (it travels in a header, which is not stored).

Example:
    >>> store = ResponseStore(tmp_dir)                                   # doctest: +SKIP
    >>> key = request_key("POST", "/v1/chat/completions", {"messages": []})
    >>> len(key)
    64
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import IO, Any

__all__ = ["RESPONSES_FILE", "ResponseStore", "request_key"]

RESPONSES_FILE = "responses.jsonl"


def request_key(method: str, path: str, body: Any) -> str:
    """A stable hash of a request: method, path and body as JSON with sorted keys."""
    text = json.dumps(
        {"method": method.upper(), "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=True,
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


class ResponseStore:
    """Responses of one run directory's server requests.

    Args:
        directory: where ``responses.jsonl`` lives (created if missing).
        readonly: never write (a replay).
    """

    def __init__(self, directory: str | Path, *, readonly: bool = False) -> None:
        self.directory = Path(directory)
        self.path = self.directory / RESPONSES_FILE
        self.readonly = readonly
        self._responses: dict[str, Any] = {}
        self._file: IO[str] | None = None
        self._dirty = False
        if not readonly:
            self.directory.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._load()

    def _load(self) -> None:
        with self.path.open(encoding="utf-8") as handle:
            for line in handle:
                try:
                    entry = json.loads(line)
                except json.JSONDecodeError:
                    continue  # a line torn by a crash: that request is simply asked again
                if isinstance(entry, dict) and "key" in entry and "response" in entry:
                    self._responses[str(entry["key"])] = entry["response"]

    def __contains__(self, key: object) -> bool:
        return key in self._responses

    def __len__(self) -> int:
        return len(self._responses)

    def get(self, key: str) -> Any | None:
        """The stored response body for ``key``, if any."""
        return self._responses.get(key)

    def put(self, key: str, method: str, path: str, request: Any, response: Any) -> None:
        """Remember a response and append it to the file (durable after :meth:`commit`)."""
        if self.readonly or key in self._responses:
            return
        self._responses[key] = response
        if self._file is None:
            torn = _ends_torn(self.path)
            self._file = self.path.open("a", encoding="utf-8")
            if torn:  # end the torn line, so it does not swallow this entry
                self._file.write("\n")
        entry = {"key": key, "method": method, "path": path, "request": request,
                 "response": response}
        self._file.write(json.dumps(entry, sort_keys=True, ensure_ascii=False) + "\n")
        self._dirty = True

    def commit(self) -> None:
        """Flush and fsync what was appended since the last commit."""
        if self._file is not None and self._dirty:
            self._file.flush()
            os.fsync(self._file.fileno())
            self._dirty = False

    def close(self) -> None:
        """Commit and close the file."""
        self.commit()
        if self._file is not None:
            self._file.close()
            self._file = None


def _ends_torn(path: Path) -> bool:
    """Whether ``path`` is non-empty and its last line has no newline."""
    if not path.exists() or path.stat().st_size == 0:
        return False
    with path.open("rb") as handle:
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) != b"\n"
