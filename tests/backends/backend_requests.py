"""Request builders shared by the backend tests."""

from __future__ import annotations

from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest

SENTENCE = "Alice meets Bob at the market and they talk about the weather in a small village"
WORDS = SENTENCE.split(" ")


def chat(n_words: int, offset: int = 0) -> tuple[Message, ...]:
    text = " ".join(WORDS[(offset + i) % len(WORDS)] for i in range(n_words))
    return (Message("system", "You are Alice."), Message("user", text))


def gen(n_words: int, *, seed: int = 0, temperature: float = 0.0, max_new: int = 8,
        top_p: float = 1.0, stop: tuple[str, ...] = (), steering=()) -> GenerateRequest:
    return GenerateRequest(
        messages=chat(n_words, seed),
        sampling=SamplingParams(max_new_tokens=max_new, temperature=temperature, seed=seed,
                                top_p=top_p, stop=stop),
        steering=tuple(steering),
    )


def score(n_words: int, options=("agree", "disagree strongly", "neither agree nor disagree"),
          *, offset: int = 0, steering=()) -> ScoreRequest:
    return ScoreRequest(messages=chat(n_words, offset), options=tuple(options),
                        steering=tuple(steering))


def mixed_generate(n: int, *, temperature: float) -> list[GenerateRequest]:
    """Requests of different lengths, seeds, budgets and temperatures."""
    return [
        gen(1 + (7 * k) % 23, seed=100 + k, temperature=temperature if k % 3 else 0.7,
            max_new=3 + k % 6, top_p=1.0 if k % 2 else 0.9)
        for k in range(n)
    ]
