"""Run-directory file primitives: atomic writes, the writer's lock, reading the manifest."""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sim.errors import RunError

__all__ = [
    "LOCK_NAME",
    "RunLock",
    "atomic_write",
    "read_manifest",
    "write_json",
]


LOCK_NAME = ".lock"


class RunLock:
    """An exclusive lock on a run directory, held while one process writes it."""

    def __init__(self, run_dir: Path) -> None:
        """Take the lock, or refuse with one line naming the process that holds it.

        Raises:
            RunError: if another process holds it.
        """
        path = run_dir / LOCK_NAME
        self._file = path.open("a+")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._file.seek(0)
            holder = self._file.read().strip() or "unknown"
            self._file.close()
            raise RunError(f"{run_dir} is being written by another process (pid {holder}); "
                           "refusing a second writer. Fix: wait for it to end, or stop it "
                           "(Ctrl-C) and resume again.") from None
        self._file.seek(0)
        self._file.truncate()
        self._file.write(str(os.getpid()))
        self._file.flush()

    def release(self) -> None:
        """Let another process write the directory."""
        if not self._file.closed:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` via ``write(tmp)`` into a temporary sibling, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """JSON to ``path``, atomically (indented, key order kept)."""
    atomic_write(path, lambda p: p.write_text(json.dumps(data, indent=2, default=str) + "\n"))


def read_manifest(run_dir: Path) -> dict[str, Any]:
    """Read a run directory's ``manifest.json``.

    Raises:
        RunError: if ``run_dir`` is not a readable run directory.
    """
    path = run_dir / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except (FileNotFoundError, NotADirectoryError):
        fix = (f"it is a sweep: pass one of its cells, e.g. {run_dir}/<cell-id>"
               if (run_dir / "sweep.json").is_file() else
               "pass a directory printed by 'traitlab run'")
        raise RunError(f"{run_dir} is not a run directory (no manifest.json). Fix: "
                       f"{fix}.") from None
    except (OSError, ValueError) as exc:
        raise RunError(f"cannot read {path}: {exc}. Fix: pass a directory printed by "
                       "'traitlab run', or check its permissions.") from None
    if not isinstance(manifest, dict) or "spec_hash" not in manifest:
        raise RunError(f"{path} is not a TraitLab run manifest. Fix: pass a directory printed "
                       "by 'traitlab run'.")
    return manifest
