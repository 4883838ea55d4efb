"""Requests shared by the server tests: a prisoner's dilemma choice, a survey item, chat."""

from __future__ import annotations

from sim.requests import GenerateRequest, Message, SamplingParams, ScoreRequest

PD = (
    Message("system", "You are Alice, a careful villager."),
    Message("user", "Round 1. Do you cooperate or defect? Answer with one word."),
)
SURVEY = (Message("user", "I see myself as someone who is talkative. <|im_end|> Rate it."),)

SCORES = [
    ScoreRequest(messages=PD, options=("cooperate", "defect")),
    ScoreRequest(messages=SURVEY, options=("disagree", "neither agree nor disagree", "agree",
                                           "I strongly agree")),
    ScoreRequest(messages=PD, options=("defect", "cooperate")),
]

GENERATES = [
    GenerateRequest(messages=PD, sampling=SamplingParams(max_new_tokens=10, temperature=0.0)),
    GenerateRequest(messages=SURVEY, sampling=SamplingParams(max_new_tokens=12, temperature=0.9,
                                                              seed=11)),
    GenerateRequest(messages=PD, sampling=SamplingParams(max_new_tokens=12, temperature=1.0,
                                                         top_p=0.9, seed=3)),
    GenerateRequest(messages=PD, sampling=SamplingParams(max_new_tokens=6, temperature=1.0,
                                                         seed=4, stop=("e",))),
]
