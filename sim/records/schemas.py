"""Polars schemas of every table a run writes: the single source of truth.

Tables on disk carry no run id (so that two runs of the same seed are byte-comparable);
:func:`analysis.io.load_run` adds ``run_id`` from the run directory's name. Rows hold only
what is reproducible from scenario + seed + model: prompt-cache hits depend on how a wave was
batched (a resumed run starts cold), so they are reported in the manifest's token stats instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

__all__ = ["AGENT_SCHEMA", "COLUMN_DOCS", "EVENT_SCHEMA", "INTERVIEW_SCHEMA", "NETWORK_SCHEMA",
           "PROMPT_SCHEMA", "SURVEY_SCHEMA", "TABLES", "frame"]

EVENT_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "round": pl.Int32,
    "stage": pl.String,
    "kind": pl.String,  # choice, message, sit_out, outcome, broadcast, sanction, intervention
    "group": pl.String,
    "turn": pl.Int32,
    "agent": pl.String,
    "partners": pl.List(pl.String),
    "text": pl.String,
    "choice": pl.String,
    "choice_index": pl.Int32,
    "options": pl.List(pl.String),
    "option_probs": pl.List(pl.Float64),
    "shown_order": pl.List(pl.Int32),  # canonical option indices as shown (first order)
    "payoff": pl.Float64,
    "score": pl.Float64,
    "prompt_hash": pl.String,
    "prompt_tokens": pl.Int32,
    "new_tokens": pl.Int32,
    "backend": pl.String,  # model | scripted
    "policy": pl.String,
    "status": pl.String,  # ok | failed
    "error": pl.String,
    "role": pl.String,  # the agent's role in this round (roles may alternate)
    "value": pl.Float64,  # the choice as a number (numeric option, else its index)
    "offer": pl.Float64,  # offer read from a message; an outcome row's deal price
    "outcomes": pl.String,  # JSON object: named outcomes (formulas, deal / price / turns)
    "correct": pl.Boolean,  # choice == the stage's answer (quiz questions)
    "decided_by": pl.String,  # logprobs | constrained | parsed | policy | failed (choices)
    "shown_orders": pl.List(pl.List(pl.Int32)),  # every order scored (option_order)
    "order_probs": pl.List(pl.List(pl.Float64)),  # per order, canonical option probabilities
    "trimmed": pl.Boolean,  # stop_at: sentence cut the message back to a sentence end
    "intervention": pl.String,  # the id of the intervention an `intervention` row records
}

AGENT_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "agent": pl.String,
    "index": pl.Int32,
    "name": pl.String,
    "cohort": pl.String,
    "policy": pl.String,
    "backend": pl.String,
    "persona_model": pl.String,  # big_five | mbti
    "openness": pl.Float64,
    "conscientiousness": pl.Float64,
    "extraversion": pl.Float64,
    "agreeableness": pl.Float64,
    "neuroticism": pl.Float64,
    "mbti": pl.String,
    "background": pl.String,
    "role": pl.String,  # the role assigned at the start (before any alternation)
    "private": pl.String,  # JSON object of private values (reserve, budget, ...)
}

NETWORK_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "source": pl.String,
    "target": pl.String,
}

SURVEY_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "round": pl.Int32,
    "stage": pl.String,  # the survey stage's id
    "agent": pl.String,
    "cohort": pl.String,
    "mode": pl.String,  # isolated | in_situ
    "instrument": pl.String,
    "item_id": pl.String,
    "trait": pl.String,
    "keyed": pl.Int32,  # +1, or -1 for reverse-keyed items
    "order": pl.String,  # option order shown: asc | desc
    "paraphrase": pl.Int32,  # instruction paraphrase index
    "repeat": pl.Int32,
    "expected": pl.Float64,  # expected scale value under the option distribution
    "argmax": pl.Int32,  # most likely scale value
    "entropy": pl.Float64,  # of the renormalised option distribution (nats)
    "mass": pl.Float64,  # probability the model gave to the valid labels at all
    "probs": pl.List(pl.Float64),  # per scale value, ascending
    "refused": pl.Boolean,
    "error": pl.String,
    "reasks": pl.Int32,
    "context": pl.String,  # text shown before the instruction (in_situ: the memory)
    "decided_by": pl.String,  # logprobs | constrained | parsed | policy | failed
}
"""One row per administered item: ``surveys/step-*.parquet`` (written only by survey stages)."""

PROMPT_SCHEMA: dict[str, Any] = {
    "prompt_hash": pl.String,
    "kind": pl.String,  # score | generate
    "messages": pl.String,  # JSON list of {"role", "content"}
    "options": pl.List(pl.String),  # score requests: the options in the shown order
}
"""One row per distinct request of a run: ``prompts/step-*.parquet`` (first step it was sent)."""

STATE_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "round": pl.Int32,
    "stage": pl.String,
    "scope": pl.String,  # global | agent
    "agent": pl.String,  # agent key for scope agent, else null
    "name": pl.String,
    "value": pl.Float64,  # numeric variables
    "text": pl.String,  # categorical variables
    "refused": pl.Boolean,  # this step's update left the bounds of an on_bound: refuse variable
}
"""World state after every step: ``state/step-*.parquet`` (scenarios that declare state)."""

INTERVIEW_SCHEMA: dict[str, Any] = {
    "replica": pl.Int32,
    "step": pl.Int32,
    "agent": pl.String,
    "question": pl.String,
    "prompt_hash": pl.String,
    "text": pl.String,
    "new_tokens": pl.Int32,
    "status": pl.String,  # ok | failed
    "error": pl.String,
    "seed": pl.Int64,
    "model": pl.String,
    "created_at": pl.String,
}
"""One row per (agent, question) of a ``traitlab interview``: ``interviews/<id>.parquet``."""


EVENT_DOCS: dict[str, str] = {
    "replica": "replica index (0 .. replicas-1); replica 0 equals a plain run of the seed",
    "step": "step number, 1-based: one step is one stage execution of every replica",
    "round": "scenario round, 1-based",
    "stage": "the stage's `id` in the scenario",
    "kind": "row kind: `choice`, `message`, `sit_out`, `outcome`, `broadcast`, `sanction` or "
            "`intervention` (one per replica and applied intervention, before the stage's rows)",
    "group": "group of the stage's grouping (`g000`, `g001`, ...; `-` for sit-out rows)",
    "turn": "turn within a dialogue group (0-based); 0 for other stages",
    "agent": "agent key (`a000`, `a001`, ...), as in `agents.parquet`",
    "partners": "keys of the other members of the agent's group in this stage",
    "text": "the message or broadcast text, or an intervention's announcement (null for "
            "choices)",
    "choice": "the option picked, as shown in the scenario (a sanction's target name)",
    "choice_index": "index of the chosen option in `options` (canonical order)",
    "options": "the stage's options in canonical (scenario) order",
    "option_probs": "probability of each option in canonical order, from option log-likelihoods",
    "shown_order": "canonical option indices in the order the agent saw them (`option_order` "
                   "`shuffled`; `balanced`: the first of `shown_orders`); null when fixed",
    "payoff": "payoff of this row (pair matrix, formula, deal or sanction cost/fine)",
    "score": "the agent's cumulative score after this row",
    "prompt_hash": "first 16 hex digits of the SHA-256 of the request's messages (and options)",
    "prompt_tokens": "prompt tokens of the request, as the model's tokenizer counts them",
    "new_tokens": "tokens generated for a message",
    "backend": "`model` (a language model answered) or `scripted` (a rule policy answered)",
    "policy": "the scripted policy's name (`tit_for_tat`, ...); null for model agents",
    "status": "`ok`, or `failed` when the request failed after the backend's retries",
    "error": "why the request failed (null when ok)",
    "role": "the agent's role in this round (roles may alternate)",
    "value": "the choice as a number: the numeric option, else its index",
    "offer": "a numeric offer read from a message; an outcome row's deal price",
    "outcomes": "JSON object of named outcomes (formula values; deal, price, turns)",
    "correct": "whether `choice` equals the stage's `answer` (quiz questions); else null",
    "decided_by": "choice and sanction rows: how the choice was decided: `logprobs` (option "
                  "log-likelihoods), `constrained` (a server held to the options), `parsed` "
                  "(a reply parsed for an option), `policy` (a scripted policy) or `failed`; "
                  "null for other rows",
    "shown_orders": "every order the choice was scored in, as lists of canonical option "
                    "indices by shown position (`balanced`: k orders of a Latin square; "
                    "`shuffled`: one); null when the order is fixed",
    "order_probs": "per order of `shown_orders`, the option probabilities in canonical order "
                   "(normalised within the order); `option_probs` is their mean",
    "trimmed": "message and broadcast rows of a stage with `stop_at: sentence`: true when "
               "the token limit cut the message and it was trimmed back to its last complete "
               "sentence (`.`, `!` or `?`, with closing quotes); false when it ended on its "
               "own or held no complete sentence; null for other rows and stages",
    "intervention": "`intervention` rows: the intervention's id (its `stage` is the stage about "
                    "to run, its `step` that stage's step; `agent` is null); null for others",
}
"""One line per column of :data:`EVENT_SCHEMA`."""

AGENT_DOCS: dict[str, str] = {
    "replica": "replica index",
    "agent": "agent key (`a000`, ...), used by every other table",
    "index": "agent index 0..n-1 (node of the social network)",
    "name": "the persona's name, as shown to other agents",
    "cohort": "cohort name from `population.cohorts` (null without cohorts)",
    "policy": "scripted policy name; null for language-model agents",
    "backend": "`model` or `scripted`",
    "persona_model": "`big_five` or `mbti`",
    "openness": "assigned Big Five openness in [0, 1] (MBTI personas: mapped from the type)",
    "conscientiousness": "assigned conscientiousness in [0, 1]",
    "extraversion": "assigned extraversion in [0, 1]",
    "agreeableness": "assigned agreeableness in [0, 1]",
    "neuroticism": "assigned neuroticism in [0, 1]",
    "mbti": "the MBTI type (`INTJ`, ...) of an MBTI persona, else null",
    "background": "the persona's background line, if any",
    "role": "the role assigned at the start (before any alternation)",
    "private": "JSON object of the agent's private values (reserve price, budget, ...)",
}
"""One line per column of :data:`AGENT_SCHEMA`."""

NETWORK_DOCS: dict[str, str] = {
    "replica": "replica index",
    "source": "agent key of one end of the edge",
    "target": "agent key of the other end (the network is undirected)",
}
"""One line per column of :data:`NETWORK_SCHEMA`."""

SURVEY_DOCS: dict[str, str] = {
    "replica": "replica index",
    "step": "the step of the survey stage's execution",
    "round": "the round it was administered in",
    "stage": "the survey stage's id",
    "agent": "agent key of the respondent",
    "cohort": "the respondent's cohort (null without cohorts)",
    "mode": "`isolated` (persona only) or `in_situ` (persona plus memory)",
    "instrument": "instrument name (`ipip-50`, `mini-ipip`, `ipip-neo-120`, ...)",
    "item_id": "item id within the instrument (`EXT1`, ...)",
    "trait": "trait (or OEJTS axis) the item scores",
    "keyed": "+1, or -1 for reverse-keyed items",
    "order": "option order shown: `asc` or `desc`",
    "paraphrase": "index of the instruction paraphrase used",
    "repeat": "repeat index of this administration of the item",
    "expected": "expected scale value under the option distribution (before reverse keying)",
    "argmax": "most likely scale value",
    "entropy": "entropy of the renormalised option distribution (nats)",
    "mass": "probability the model gave to the valid labels at all",
    "probs": "probability per scale value, ascending",
    "refused": "true when no answer was obtained (failed request, or no valid number)",
    "error": "why the item failed (null when ok)",
    "reasks": "re-asks after an unparsable reply (generate mode only; 0 when scored)",
    "context": "text shown before the instruction (in_situ: the agent's memory)",
    "decided_by": "how the answer was obtained: `logprobs` (option log-likelihoods), "
                  "`constrained` (a server held to the labels), `parsed` (a reply parsed "
                  "for a label or number), `policy` (a scripted policy) or `failed`",
}
"""One line per column of :data:`SURVEY_SCHEMA`."""

PROMPT_DOCS: dict[str, str] = {
    "prompt_hash": "the request's hash, as in the events' `prompt_hash` (the link)",
    "kind": "`score` (options scored) or `generate` (a message written)",
    "messages": "the rendered chat as sent: JSON list of `{\"role\", \"content\"}`",
    "options": "score requests: the options in the order shown; null for generate",
}
"""One line per column of :data:`PROMPT_SCHEMA`."""

STATE_DOCS: dict[str, str] = {
    "replica": "replica index, as in the events",
    "step": "the step after which the state is recorded (one row per variable and step)",
    "round": "scenario round of that step",
    "stage": "the stage executed at that step (its `update:` already applied)",
    "scope": "`global` (a `state:` variable) or `agent` (an `agent_state:` variable)",
    "agent": "agent key for `agent` scope; null for `global`",
    "name": "the variable's name as declared",
    "value": "its value, for a numeric variable (null for a categorical one)",
    "text": "its value, for a categorical variable (null for a numeric one)",
    "refused": "true when this step's update would have left the bounds of an "
               "`on_bound: refuse` variable and was not applied",
}
"""One line per column of :data:`STATE_SCHEMA`."""

INTERVIEW_DOCS: dict[str, str] = {
    "replica": "replica of the interviewed agent",
    "step": "the step at whose end the agent was interviewed (`--at`; 0: before the first)",
    "agent": "agent key, as in `agents.parquet`",
    "question": "the question as asked",
    "prompt_hash": "the request's hash; its text is in `interviews/<id>-prompts.parquet`",
    "text": "the agent's answer",
    "new_tokens": "tokens generated",
    "status": "`ok`, or `failed` (the request failed; `text` is null)",
    "error": "why the request failed (null when ok)",
    "seed": "the request's seed, from the run seed, replica, step, agent and question",
    "model": "backend and model that answered (`hf:<model>`, `scripted:...`)",
    "created_at": "UTC time of the interview (ISO 8601), the same on every row of it",
}
"""One line per column of :data:`INTERVIEW_SCHEMA`."""

TABLES: dict[str, tuple[str, dict[str, Any]]] = {
    "events": ("events/step-NNNNNN.parquet", EVENT_SCHEMA),
    "agents": ("agents.parquet", AGENT_SCHEMA),
    "network": ("network.parquet", NETWORK_SCHEMA),
    "surveys": ("surveys/step-NNNNNN.parquet", SURVEY_SCHEMA),
    "prompts": ("prompts/step-NNNNNN.parquet", PROMPT_SCHEMA),
    "state": ("state/step-NNNNNN.parquet", STATE_SCHEMA),
    "interviews": ("interviews/<id>.parquet", INTERVIEW_SCHEMA),
}
"""Every table of a run directory: name -> (file, schema)."""

COLUMN_DOCS: dict[str, dict[str, str]] = {
    "events": EVENT_DOCS, "agents": AGENT_DOCS, "network": NETWORK_DOCS, "surveys": SURVEY_DOCS,
    "prompts": PROMPT_DOCS, "state": STATE_DOCS, "interviews": INTERVIEW_DOCS,
}
"""Every table's column descriptions, keyed like :data:`TABLES` (checked by tests/test_docs.py)."""


def frame(rows: Iterable[Mapping[str, Any]], schema: Mapping[str, Any]) -> pl.DataFrame:
    """Rows -> a frame with exactly ``schema``'s columns (missing values become null).

    Raises:
        ValueError: if a row has a column the schema does not define.
    """
    rows = list(rows)
    extra = {k for r in rows for k in r} - set(schema)
    if extra:
        raise ValueError(f"columns not in the schema: {sorted(extra)}")
    columns = {name: [r.get(name) for r in rows] for name in schema}
    return pl.DataFrame(columns, schema=dict(schema))
