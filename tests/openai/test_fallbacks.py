"""A server without log-probabilities: constrained choice, then parsed generation, then failed;
every result says how it was decided."""

from __future__ import annotations

import math

import pytest

from sim.backends.openai import OpenAIBackend
from sim.backends.openai.scoring import parse_choice
from sim.errors import BackendError
from tests.openai.conftest import config
from tests.openai.requests_ import SCORES


def _one_hot(options, chosen):
    return tuple(0.0 if o == chosen else -math.inf for o in options)


def test_guided_choice_is_used_when_there_are_no_logprobs(proxy) -> None:
    fault, handle = proxy
    fault.plain, fault.guided = True, True
    with OpenAIBackend(config(handle.base_url)) as backend:
        caps = backend.detect()
        got = backend.score(SCORES)
        assert backend.last_decided_by == ["constrained"] * len(SCORES)
        assert backend.stats["decided_by"] == {"constrained": len(SCORES)}
    assert (caps.traitlab, caps.tokenize, caps.prompt_logprobs) == (False, False, False)
    assert caps.guided == "guided_choice" and caps.scoring == "constrained"
    for req, result in zip(SCORES, got, strict=True):
        last = req.messages[-1].content
        assert result.logprobs == _one_hot(req.options, req.options[len(last) % len(req.options)])


def test_parsed_choice_with_a_bounded_reask(proxy) -> None:
    fault, handle = proxy
    fault.plain = True
    req = SCORES[0]
    with OpenAIBackend(config(handle.base_url, max_reasks=2)) as backend:
        assert backend.detect().scoring == "parsed"
        sent_before = fault.count("/v1/chat/completions")
        fault.replies.extend(["Hmm, let me think.", "  Defect. "])
        got = backend.score([req])[0]
        assert backend.last_decided_by == ["parsed"]
        assert backend.stats["reasks"] == 1 and backend.stats["parse_failures"] == 0
    assert got.logprobs == _one_hot(req.options, "defect") and got.error is None
    assert fault.count("/v1/chat/completions") - sent_before == 2  # the ask and one re-ask


def test_parse_failures_are_failed_and_counted(proxy) -> None:
    fault, handle = proxy
    fault.plain = True
    with OpenAIBackend(config(handle.base_url, max_reasks=1)) as backend:
        backend.detect()
        sent_before = fault.count("/v1/chat/completions")
        fault.replies.extend(["no idea", "still no idea"])
        got = backend.score([SCORES[0]])[0]
        stats = backend.stats
        assert backend.last_decided_by == ["failed"]
    assert got.logprobs == () and "parse failure" in (got.error or "")
    assert stats["parse_failures"] == 1 and stats["reasks"] == 1
    assert fault.count("/v1/chat/completions") - sent_before == 2  # 1 ask + 1 re-ask, no more


def test_gibberish_from_the_real_model_ends_as_failed(proxy) -> None:
    fault, handle = proxy
    fault.plain = True
    with OpenAIBackend(config(handle.base_url, max_reasks=1)) as backend:
        got = backend.score(SCORES[:2])
        decided = backend.last_decided_by
    for result, how in zip(got, decided, strict=True):
        assert how in ("parsed", "failed")
        assert (how == "failed") == (result.error is not None)


def test_forced_modes_that_the_server_lacks_are_refused(proxy) -> None:
    fault, handle = proxy
    fault.plain = True
    for mode in ("logprobs", "constrained"):
        with OpenAIBackend(config(handle.base_url, scoring=mode)) as backend, \
                pytest.raises(BackendError, match=f"scoring '{mode}'"):
            backend.detect()


@pytest.mark.parametrize(
    ("reply", "options", "want"),
    [
        ("Defect.", ("cooperate", "defect"), "defect"),
        ('"cooperate"', ("cooperate", "defect"), "cooperate"),
        ("agree strongly, because", ("agree", "agree strongly"), "agree strongly"),
        ("Agree", ("agree", "agree strongly"), "agree"),
        ("I would defect", ("cooperate", "defect"), None),
        ("cooperate-ish", ("cooperate", "defect"), None),
        ("", ("cooperate", "defect"), None),
    ],
)
def test_parse_choice_is_strict(reply, options, want) -> None:
    assert parse_choice(reply, options) == want


def test_score_results_carry_decided_by_when_the_type_has_it() -> None:
    import dataclasses

    from sim.backends.openai.scoring import score_result
    from sim.requests import ScoreResult

    result = score_result((0.0, -1.0), decided_by="parsed", num_prompt_tokens=3)
    assert result.logprobs == (0.0, -1.0) and result.num_prompt_tokens == 3
    if "decided_by" in {f.name for f in dataclasses.fields(ScoreResult)}:
        assert result.decided_by == "parsed"  # type: ignore[attr-defined]
