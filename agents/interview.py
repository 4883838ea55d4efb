"""Interview questions to an agent: its persona and memory, then one question, free text.

The request is built like a dialogue turn (the agent's system prompt, its steering), but the
user turn is an interviewer's question after what the agent remembers. Nothing is folded
back into the agent: an interview reads its state and leaves it as it was.
"""

from __future__ import annotations

import hashlib

from agents.agent import TALK_CONTEXT, Agent
from sim.requests import GenerateRequest, Message, SamplingParams

__all__ = ["INTERVIEW_CUE", "interview_request", "question_key"]

INTERVIEW_CUE = "Answer in your own words, in one to three sentences."


def question_key(question: str) -> int:
    """A stable number for a question's text (a seed key: same question, same stream)."""
    return int.from_bytes(hashlib.sha256(question.encode()).digest()[:4], "big")


def interview_request(agent: Agent, question: str, *, memory: int,
                      sampling: SamplingParams) -> GenerateRequest:
    """The request that asks ``agent`` one question, from its last ``memory`` moments.

    The question is data: it is placed in the user turn as given, never rendered as a
    template.
    """
    user = (f"What you remember:\n{agent.memory.render(memory)}\n\n"
            f"An interviewer asks you: {question}\n\n{INTERVIEW_CUE}")
    system = f"{agent.system_prompt}\n\n{TALK_CONTEXT}"
    return GenerateRequest(messages=(Message("system", system), Message("user", user)),
                           sampling=sampling, steering=agent.steering)
