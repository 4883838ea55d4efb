"""The response store: resume never re-asks, replay answers with no server, the key stays out."""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from sim.backends.openai import OpenAIBackend, ReplayBackend, ReplayMissError, request_key
from sim.backends.openai.store import RESPONSES_FILE, ResponseStore
from sim.errors import BackendError
from sim.requests import GenerateRequest, Message, SamplingParams
from tests.openai.conftest import config
from tests.openai.fault_proxy import FaultProxy
from tests.openai.requests_ import GENERATES, SCORES


def test_request_keys_are_stable_and_order_free() -> None:
    a = request_key("POST", "/v1/x", {"b": 1, "a": [1, 2]})
    assert a == request_key("post", "/v1/x", {"a": [1, 2], "b": 1})
    assert a != request_key("POST", "/v1/x", {"a": [2, 1], "b": 1})
    assert len(a) == 64 and int(a, 16) >= 0


@pytest.mark.parametrize("extensions", [True, False], ids=["native", "echo"])
def test_replay_answers_identically_with_the_server_stopped(
    proxy, tmp_path: Path, extensions: bool
) -> None:
    _, handle = proxy
    store = tmp_path / "responses"
    with OpenAIBackend(config(handle.base_url, extensions=extensions),
                       store_dir=store) as backend:
        scores, gens = backend.score(SCORES), backend.generate(GENERATES)
        decided, described = backend.last_decided_by, backend.describe()
    handle.stop()
    with ReplayBackend(store) as replay:
        assert replay.score(SCORES) == scores
        assert replay.last_decided_by == decided
        assert replay.generate(GENERATES) == gens
        assert replay.describe()["capabilities"] == described["capabilities"]
        assert replay.stats["requests"] == 0 and replay.stats["store_hits"] > 0
        new = GenerateRequest(messages=(Message("user", "never asked"),),
                              sampling=SamplingParams(seed=99))
        with pytest.raises(ReplayMissError, match=r"request [0-9a-f]{64} \(POST "):
            replay.generate([new])


def test_a_resumed_run_never_reasks_a_stored_request(server, tmp_path: Path) -> None:
    from sim.serve import start_app

    store = tmp_path / "responses"
    first = FaultProxy(server.url)
    with start_app(first.app) as handle, OpenAIBackend(
            config(handle.base_url, extensions=False), store_dir=store) as backend:
        want = backend.generate(GENERATES[:2]), backend.score(SCORES[:1])
    lines = (store / RESPONSES_FILE).read_text().splitlines()
    with (store / RESPONSES_FILE).open("a") as f:
        f.write(lines[-1][: len(lines[-1]) // 2])  # a line torn by a crash
    second = FaultProxy(server.url)
    with start_app(second.app) as handle, OpenAIBackend(
            config(handle.base_url, extensions=False), store_dir=store) as backend:
        got = backend.generate(GENERATES[:2]), backend.score(SCORES[:1])
        assert backend.stats["requests"] == 0
        assert second.seen == []  # not even the capability probes
        backend.generate(GENERATES[2:3])
        assert second.count("/v1/chat/completions") == 1
    assert got == want
    assert len(ResponseStore(store)) == len(lines) + 1


def test_the_api_key_never_leaves_the_header(proxy, tmp_path: Path, monkeypatch) -> None:
    fault, handle = proxy
    key = "sk-test-" + secrets.token_hex(16)
    monkeypatch.setenv("TL_TEST_API_KEY", key)
    store = tmp_path / "responses"
    cfg = config(handle.base_url, api_key_env="TL_TEST_API_KEY", retries=1)
    texts: list[str] = [repr(cfg), str(cfg.model_dump())]
    with OpenAIBackend(cfg, store_dir=store) as backend:
        backend.score(SCORES)
        backend.generate(GENERATES[:1])
        texts.append(json.dumps(backend.describe()))
        texts.append(json.dumps(backend.stats))
        fault.echo_auth = True  # a hostile server puts the key in its error message
        failed = backend.generate(GENERATES[1:2])[0]
        texts.append(str(failed.error))
        fault.echo_auth = False
    assert all(h == f"Bearer {key}" for h in fault.auth_headers)  # it is sent
    assert failed.finish_reason == "error" and "***" in (failed.error or "")
    texts += [p.read_text() for p in store.rglob("*") if p.is_file()]
    assert len(texts) > 5
    assert not [t for t in texts if key in t]


def test_credentials_in_the_url_and_missing_keys(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("TL_UNSET_KEY", raising=False)
    with pytest.raises(BackendError, match="TL_UNSET_KEY") as err:
        OpenAIBackend(config("http://127.0.0.1:9/v1", api_key_env="TL_UNSET_KEY"))
    assert "export TL_UNSET_KEY" in str(err.value)
    cfg = config("http://user:hunter2@127.0.0.1:9/v1", retries=0)
    backend = OpenAIBackend(cfg, store_dir=tmp_path)
    with pytest.raises(BackendError) as err:
        backend.detect()
    backend.close()
    texts = [repr(cfg), str(err.value), (tmp_path / "backend.json").read_text()]
    assert not [t for t in texts if "hunter2" in t]
    with pytest.raises(ValueError, match="NAME of an environment variable"):
        config("http://127.0.0.1:9/v1", api_key_env="sk-123-abc")
