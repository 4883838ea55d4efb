"""Every file in tests/data/bad_scenarios/ is refused with one precise, readable line.

For each bad file both ``traitlab validate`` and ``traitlab run --backend scripted`` must exit
2 and print exactly one line on stderr naming the file, the line, the field, the bad value and
a fix, and ``run`` must not create a run directory. A file with several mistakes gets one
such line per mistake, all at once, in line order.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import NamedTuple

import pytest

from sim.cli.main import main

BAD = Path(__file__).parent / "data" / "bad_scenarios"


class Expected(NamedTuple):
    line: int
    field: str | None  # dotted field path, None where the file has no structure to point at
    value: str | None  # the bad value as it appears in the message
    pattern: str  # regex for the message's specific content


EXPECTED: dict[str, Expected] = {
    "trait_linked_without_trait.yaml": Expected(
        9, "population.cohorts.0.policy.trait", None,
        r"policy 'trait_linked' needs a 'trait'\. Fix: add trait: <openness, "),
    "unknown_key.yaml": Expected(
        14, "zebra_crossing", "'zebra_crossing'",
        r"unknown key 'zebra_crossing'\. Fix: allowed keys here: name, description, rounds, "),
    "misspelt_key.yaml": Expected(
        11, "stages.0.optoins", "'optoins'",
        r"unknown key 'optoins'\. Fix: did you mean 'options'\? allowed keys here: .*options"),
    "wrong_type.yaml": Expected(
        3, "rounds", "'ten'", r"should be a valid integer, got 'ten'\. Fix: write a valid integer"),
    "trait_out_of_range.yaml": Expected(
        11, "population.profiles.0.big_five.extraversion", "1.4",
        r"should be less than or equal to 1, got 1\.4\. Fix: use a value less than or equal to 1"),
    "unknown_generator.yaml": Expected(
        7, "network.generator", "'watts_strogats_graph'",
        r"unknown networkx generator 'watts_strogats_graph'\. "
        r"Fix: did you mean 'watts_strogatz_graph'\?"),
    "flow_unknown_stage.yaml": Expected(
        21, "flow.1.to", "'plya'",
        r"flow edge to unknown stage 'plya'\. Fix: did you mean 'play'\? known: chat, play, end"),
    "choice_without_options.yaml": Expected(
        7, "stages.0", None,
        r"a choice stage needs exactly one of 'options' or 'levels'\. Fix: write options:"),
    "payoff_wrong_shape.yaml": Expected(
        13, "stages.0.payoff.matrix", "2x3",
        r"payoff matrix is 2x3 but the stage has 2 options\. Fix: write a 2x2 matrix"),
    "duplicate_stage_ids.yaml": Expected(
        12, "stages.1.id", "'play'",
        r"duplicate stage id 'play' \(also stages\.0\)\. Fix: give every stage a unique id"),
    "invalid_mbti.yaml": Expected(
        8, "population.profiles.0.mbti.type", "'XYZW'",
        r"not a four-letter MBTI type, got 'XYZW'\. Fix: use a four-letter MBTI type such as INTJ"),
    "malformed.yaml": Expected(
        12, None, None,
        r"malformed YAML: expected ',' or '\]', but got ':' \(while parsing a flow sequence "
        r"started at line 11\)\. Fix: .*on line 11"),
    "empty.yaml": Expected(
        1, None, None, r"the file is empty\. Fix: start from scenarios/prisoners_dilemma\.yaml"),
    "unknown_template_field.yaml": Expected(
        10, "stages.0.prompt", "{partner.secret}",
        r"unknown template field \{partner\.secret\}; allowed: \{name\}, .*\{partner\.name\}"),
    "unknown_stage_kind.yaml": Expected(
        8, "stages.0.kind", "'choise'",
        r"unknown stage kind 'choise'\. Fix: did you mean 'choice'\? use one of: choice, dialogue"),
    "state_unknown_name.yaml": Expected(
        14, "stages.0.update.state.lake", "'state.lak - total_value'",
        r"formula 'state\.lak - total_value' uses unknown name\(s\) state\.lak; known: .*"
        r"state\.lake, total_payoff, total_value\. Fix: see 'State' in scenarios/README\.md"),
    "state_template_unknown.yaml": Expected(
        11, "stages.0.prompt", "{state.lak}",
        r"unknown template field \{state\.lak\}; allowed: .*\{state\.lake\}\. Fix: use only"),
    "state_initial_out_of_bounds.yaml": Expected(
        7, "state.lake.initial", "120",
        r"initial 120 is outside the bounds \[0, 100\]\. Fix: write an initial value within"),
    "state_global_update_reads_choice.yaml": Expected(
        14, "stages.0.update.state.lake", None,
        r"formula 'state\.lake - 5 if my\.choice == \"some\" else state\.lake' uses unknown "
        r"name\(s\) my\.choice; known: .*total_value\. Fix: see 'State'"),
    "state_initial_bool.yaml": Expected(
        7, "state.open.initial", "True",
        r"should be a valid number, got True\. Fix: write a valid number"),
    "state_min_above_max.yaml": Expected(
        7, "state.lake.min", "100", r"min 100 is above max 0\. Fix: swap min and max\."),
    "state_update_cycle.yaml": Expected(
        15, "stages.0.update.state.lake", "state.fish",
        r"the update of state\.lake reads state\.fish, which a later update of this stage "
        r"changes: .* Fix: move the update of state\.fish before state\.lake's"),
    "state_stop_without_rounds.yaml": Expected(
        7, "stop", None,
        r"a condition on state needs a round limit: .* Fix: write rounds: N"),
    "state_categorical_initial.yaml": Expected(
        7, "state.regime.initial", "'opne'",
        r"initial 'opne' is not one of the variable's values\. Fix: did you mean 'open'\? "
        r"use one of: open, closed\."),
    "state_categorical_literal.yaml": Expected(
        15, "stages.0.update.state.lake", "'shut'",
        r"'shut' is not a value of state\.regime\. Fix: use one of: open, closed\."),
    "state_update_undeclared.yaml": Expected(
        14, "stages.0.update.my.state.welth", "'my.state.welth'",
        r"update of an undeclared variable 'my\.state\.welth'\. Fix: did you mean 'wealth'\? "
        r"declare it under agent_state:"),
    "state_categorical_bounds.yaml": Expected(
        7, "state.regime", None,
        r"a categorical variable \(values: \[\.\.\.\]\) has no min or max\. Fix: remove min"),
    "state_text_without_values.yaml": Expected(
        7, "state.regime.initial", "'open'",
        r"initial 'open' is text, but the variable has no values: \[\.\.\.\]\. Fix: write a "
        r"number, or declare values: \[open, \.\.\.\]\."),
    "flow_cycle.yaml": Expected(
        22, "flow.2", "chat -> play -> chat",
        r"the flow has a cycle within a round \(chat -> play -> chat\)\. Fix: rounds repeat"),
    "missing_population.yaml": Expected(
        2, "population", None, r"required key 'population' is missing\. Fix: add 'population:'"),
    "bad_grouping.yaml": Expected(
        9, "stages.0.groups.by", "'random_pairz'",
        r"should be 'all', 'random_pairs', 'groups_of', 'round_robin', 'neighbours', 'fixed', "
        r"'bipartite', 'neighbour_sample' or 'ego', "
        r"got 'random_pairz'\. "
        r"Fix: did you mean 'random_pairs'\?"),
    "top_level_list.yaml": Expected(
        2, None, None, r"the top level must be a mapping, got list\."),
    "duplicate_key.yaml": Expected(
        6, "rounds", "'rounds'", r"key 'rounds' appears twice in one mapping\. Fix: remove one"),
    "generator_bad_param.yaml": Expected(
        9, "network.prob", "'prob'",
        r"'prob' is not a parameter of watts_strogatz_graph\. Fix: allowed: k, p\.$"),
    "python_tag.yaml": Expected(
        2, "name", "'!!python/object/apply:os.system'",
        r"YAML tag '!!python/object/apply:os\.system' is not allowed\. Fix: remove the tag"),
    "survey_unknown_instrument.yaml": Expected(
        14, "stages.1.instrument", "'ipip-5O'",
        r"unknown instrument 'ipip-5O'\. Fix: did you mean 'ipip-50'\? use one of: ipip-50, "
        r"mini-ipip, ipip-neo-120 \(restricted, with allow_restricted: true: bfi-44, oejts\)"),
    "survey_restricted.yaml": Expected(
        14, "stages.1.instrument", "'bfi-44'",
        r"instrument 'bfi-44' is restricted \(non-commercial research use only\).*Fix: add "
        r"'allow_restricted: true' to the stage after reading .*LICENSE-NOTICE\.md"),
    "survey_bad_mode.yaml": Expected(
        14, "stages.1.mode", "'in-situ'",
        r"should be 'isolated' or 'in_situ', got 'in-situ'\. Fix: did you mean 'in_situ'\?"),
    "dialogue_all_to_all.yaml": Expected(
        10, "stages.0.groups.by", "'all'",
        r"groups\.by 'all' puts all 40 agents in one dialogue, one long chat \(at most 12 "
        r"agents per dialogue group\)\. Fix: group dialogue stages by random_pairs"),
    "survey_rounds_beyond.yaml": Expected(
        14, "stages.1.rounds.1", "12",
        r"round 12 is beyond the scenario's 10 rounds\. Fix: use rounds 1\.\.10"),
    # what passes validation must be able to run: sizes, numbers and formulas are bounded
    "network_hypercube.yaml": Expected(
        7, "network.generator", "'hypercube_graph'",
        r"'hypercube_graph' makes 4 nodes for 2 agents, not one node per agent\. Fix: use a "),
    "network_complete_huge.yaml": Expected(
        7, "network.generator", "'complete_graph'",
        r"'complete_graph' makes about 421,875,000 edges for 30,000 agents, over the limit of "
        r"2,000,000\. Fix: use a sparser generator"),
    "network_param_type.yaml": Expected(
        7, "network", "p='often'",
        r"watts_strogatz_graph\(k=4, p='often'\) fails: .*Fix: check the generator's "),
    "groups_of_huge.yaml": Expected(
        9, "stages.0.groups.size", "90000",
        r"groups of 90000 are over the limit of 1,000 agents\. Fix: use a size of at most"),
    "formula_power_tower.yaml": Expected(
        13, "stages.0.payoff.formula", "'9 ** 9 ** 9'",
        r"'9 \*\* 9 \*\* 9' is beyond 1e\+15; write smaller numbers\. Fix: "),
    "formula_min_one_arg.yaml": Expected(
        13, "stages.0.payoff.formula", "'min(value)'",
        r"'min\(value\)' has 1 argument\(s\); min takes two or more numbers"),
    "formula_unary_chain.yaml": Expected(
        13, "stages.0.payoff.formula", "'-----",
        r"nests deeper than 100 levels; simplify it\. Fix: "),
    "params_built_in_name.yaml": Expected(
        4, "params.round", "'round'",
        r"param 'round' has the name of a value formulas already have \(round is built in\), "
        r"so formulas would never read the param\. Fix: rename it \(e\.g\. round_param\)"),
    "params_nan.yaml": Expected(
        4, "params.m", "nan",
        r"should be a finite number, got nan\. Fix: write a finite number \(not \.inf"),
    "levels_infinite.yaml": Expected(
        10, "stages.0.levels.max", "inf",
        r"should be a finite number, got inf\. Fix: write a finite number"),
    "levels_tiny_step.yaml": Expected(
        10, "stages.0.levels", None,
        r"levels give over 64 options; between 2 and 64 are allowed\. Fix: check min"),
    "private_tiny_step.yaml": Expected(
        10, "roles.0.private.budget.step", "1e-09",
        r"the range 0\.\.100 in steps of 1e-09 has over 1,000,000 values\. Fix: use a "),
    "trait_bool.yaml": Expected(
        8, "population.profiles.0.big_five.openness", "True",
        r"should be a valid number, got True\. Fix: write a valid number"),
    "trait_hex.yaml": Expected(
        8, "population.profiles.0.big_five.openness", "'0x1'",
        r"'0x1' is a hexadecimal, octal or base-60 number in YAML 1\.1\. Fix: write the "
        r"number in plain decimal"),
    # names and edges that records could not tell apart
    "names_duplicate.yaml": Expected(
        6, "population.names.2", "'alex'",
        r"the name 'alex' is given twice \(also population\.names\.0\)\. Fix: give every"),
    "names_nobody.yaml": Expected(
        6, "population.names.1", "'Nobody'",
        r"the name 'Nobody' reads as 'nobody', the 'punish nobody' option of sanction stages"),
    # grouping on a network and message stop rules
    "groups_sample_without_network.yaml": Expected(
        9, "stages.0.groups.by", "'neighbour_sample'",
        r"groups\.by 'neighbour_sample' needs a network\. Fix: add a 'network:' section"),
    "groups_ego_without_network.yaml": Expected(
        9, "stages.0.groups.by", "'ego'",
        r"groups\.by 'ego' needs a network\. Fix: add a 'network:' section"),
    "groups_ego_star_dialogue.yaml": Expected(
        13, "stages.0.groups.by", "'ego'",
        r"stage 'chat': groups\.by 'ego' makes one group of each agent and its neighbours; "
        r"agent 0 has 13 neighbours in network\.edges, a group of 14, over the limit of 12 "
        r"agents per dialogue group\. Fix: group by neighbours \(one pair per edge\) or "
        r"neighbour_sample, or use a network in which every agent has at most 11 neighbours\."),
    "groups_ego_complete_graph.yaml": Expected(
        11, "stages.0.groups.by", "'ego'",
        r"stage 'tell': .*some agent has at least 1,000 neighbours in complete_graph of 1,001 "
        r"agents, a group of 1,001, over the limit of 1,000 agents per group\. Fix: .*at most "
        r"999 neighbours\."),
    "groups_ego_ring_dialogue.yaml": Expected(
        11, "stages.0.groups.by", "'ego'",
        r"some agent has at least 12 neighbours in watts_strogatz_graph\(k=12, p=0\.1\) of 40 "
        r"agents, a group of 13, over the limit of 12 agents per dialogue group\."),
    "groups_sample_k_zero.yaml": Expected(
        10, "stages.0.groups.k", "k = 0",
        r"k = 0: every agent must draw at least one neighbour\. Fix: use k: 1"),
    "groups_k_without_sample.yaml": Expected(
        9, "stages.0.groups.k", "random_pairs",
        r"'k' is only used with by: neighbour_sample, but the stage groups by random_pairs\. "
        r"Fix: remove 'k'"),
    "stop_at_game_master.yaml": Expected(
        9, "stages.0.stop_at", None,
        r"stop_at trims generated messages, but this broadcast is the game master's fixed "
        r"text\. Fix: remove stop_at, or set speaker: ROLE"),
    "network_self_loop.yaml": Expected(
        7, "network.edges.2", "[2, 2]",
        r"edge \[2, 2\] joins agent 2 to itself\. Fix: remove it"),
    "intervention_agent_out_of_range.yaml": Expected(
        26, "interventions.0.to.agents.1", "4",
        r"agent 4 is not in a population of 4\. Fix: use agent indices 0 to 3\."),
    "intervention_changes_nothing.yaml": Expected(
        23, "interventions.0", "'quota'",
        r"intervention 'quota' changes nothing\. Fix: add set, announce, policy"),
    "intervention_duplicate_id.yaml": Expected(
        26, "interventions.1.id", "'quota'",
        r"duplicate intervention id 'quota' \(also interventions\.0\)\. Fix: give every"),
    "intervention_edge_out_of_range.yaml": Expected(
        26, "interventions.0.edges.remove.0", "[1, 4]",
        r"edge \[1, 4\] names an agent outside the population of 4\. Fix: use agent indices"),
    "intervention_edge_self_loop.yaml": Expected(
        26, "interventions.0.edges.add.0", "[3, 3]",
        r"edge \[3, 3\] joins agent 3 to itself\. Fix: remove it"),
    "intervention_edges_without_network.yaml": Expected(
        25, "interventions.0.edges", None,
        r"edges change the social network, but the scenario has none\. Fix: declare network"),
    "intervention_no_trigger.yaml": Expected(
        23, "interventions.0", "'quota'",
        r"intervention 'quota' has no trigger\. Fix: add at: \{round: N\} or when: "),
    "intervention_round_beyond.yaml": Expected(
        24, "interventions.0.at.round", "7",
        r"round 7 is beyond the run's 5 round\(s\): the intervention would never fire\. "
        r"Fix: use a round from 1 to 5, or raise rounds"),
    "intervention_set_text_number.yaml": Expected(
        25, "interventions.0.set.state.regime", "3",
        r"'state\.regime' holds text; 3 is a number\. Fix: write one of: open, closed"),
    "intervention_set_undeclared.yaml": Expected(
        25, "interventions.0.set.params.cpa", "'params.cpa'",
        r"set of an undeclared name 'params\.cpa'\. Fix: did you mean 'cap'\? declare it "
        r"under params: \(known: cap\)"),
    "intervention_to_two.yaml": Expected(
        26, "interventions.0.to", None,
        r"'to' names exactly one of role, cohort or agents\. Fix: write to: \{role: R\}"),
    "intervention_to_without_effect.yaml": Expected(
        26, "interventions.0.to", None,
        r"'to' chooses who an announcement or a my\.state set reaches; this intervention has "
        r"neither\. Fix: add announce: or a my\.state set, or remove 'to'"),
    "intervention_two_triggers.yaml": Expected(
        25, "interventions.0.when", None,
        r"an intervention has one trigger: 'at' or 'when', not both\. Fix: remove 'when'"),
    "intervention_unknown_cohort.yaml": Expected(
        25, "interventions.0.policy.cohort", "'greddy'",
        r"unknown cohort 'greddy'\. Fix: did you mean 'greedy'\? known cohorts: greedy"),
    "intervention_announce_unknown_field.yaml": Expected(
        25, "interventions.0.announce", "{state.lak}",
        r"unknown template field \{state\.lak\}; allowed: \{round\}, \{rounds\}, "
        r"\{n_agents\}, \{state\.lake\}, \{state\.regime\}, \{params\.cap\}\. Fix: use only "
        r"the listed fields, and write a literal brace as \{\{ or \}\}\."),
    "intervention_unknown_role.yaml": Expected(
        26, "interventions.0.to.role", "'fishers'",
        r"unknown role 'fishers'\. Fix: did you mean 'fisher'\? known roles: fisher"),
    "intervention_when_unknown.yaml": Expected(
        24, "interventions.0.when", "'state.lak < 30'",
        r"formula 'state\.lak < 30' uses unknown name\(s\) state\.lak; known: .*state\.lake"
        r".* Fix: see 'Interventions' in scenarios/README\.md"),
}


def test_corpus_matches_table() -> None:
    files = sorted(p.name for p in BAD.glob("*.yaml"))
    assert files == sorted(EXPECTED), "every bad scenario needs an expected message (and back)"
    assert len(files) >= 14


def _check_line(err: str, path: Path, expected: Expected) -> None:
    lines = err.splitlines()
    assert len(lines) == 1, err
    (line,) = lines
    assert line.startswith(f"error: {path}:{expected.line}:") or line.startswith(
        f"error: {path}:{expected.line} "), line
    if expected.field is not None:
        assert f" field '{expected.field}': " in line, line
    else:
        assert " field '" not in line, line
    if expected.value is not None:
        assert expected.value in line, line
    assert " Fix: " in line, line
    assert re.search(expected.pattern, line), line
    assert "Traceback" not in line and "pydantic" not in line and "^[" not in line, line


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_validate_refuses(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / name
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _check_line(err, path, EXPECTED[name])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_run_refuses(name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = BAD / name
    out_dir = tmp_path / "runs"
    assert main(["run", str(path), "--backend", "scripted", "--out", str(out_dir)]) == 2
    _out, err = capsys.readouterr()
    _check_line(err, path, EXPECTED[name])
    assert not out_dir.exists() or not any(out_dir.iterdir()), "no run directory for a bad file"


def test_python_tag_is_not_executed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    marker = tmp_path / "pwned"
    bad = tmp_path / "tag.yaml"
    bad.write_text(f'name: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert main(["validate", str(bad)]) == 2
    assert "is not allowed" in capsys.readouterr().err
    assert not marker.exists()


def test_validate_stops_at_first_bad_file(capsys: pytest.CaptureFixture[str]) -> None:
    good = Path(__file__).parents[1] / "scenarios" / "prisoners_dilemma.yaml"
    assert main(["validate", str(good), str(BAD / "wrong_type.yaml")]) == 2
    out, err = capsys.readouterr()
    assert out.startswith("ok  ")
    assert len(err.splitlines()) == 1 and "wrong_type.yaml:3:" in err


MANY_MISTAKES = """\
# Four independent cross-field mistakes.
name: many-mistakes
rounds: 3
population:
  size: 40
  cohorts:
    - {name: bots, count: 4, policy: {name: always, option: cooperatte}}
stages:
  - id: chat
    kind: dialogue
    prompt: Talk it over.
    groups: {by: all}
  - id: play
    kind: choice
    prompt: "Pick one, {partner.secret}."
    options: [cooperate, defect]
    groups: {by: random_pairs}
flow:
  - {from: start, to: chat}
  - {from: chat, to: plya}
"""

MANY_STRUCTURAL = """\
name: many-type-errors
rounds: ten
population:
  size: 4
  profiles:
    - big_five: {openness: 0.5, conscientiousness: 0.5, extraversion: 1.4,
                 agreeableness: 0.5, neuroticism: 0.5}
stages:
  - id: play
    kind: choice
    prompt: Cooperate or defect?
    optoins: [cooperate, defect]
    groups: {by: random_pairz}
"""


def _lines_of(err: str, path: Path, expected: list[Expected]) -> None:
    lines = err.splitlines()
    assert len(lines) == len(expected), err
    for line, want in zip(lines, expected, strict=True):
        _check_line(line, path, want)


def test_every_cross_field_mistake_is_reported_in_line_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "many.yaml"
    path.write_text(MANY_MISTAKES)
    expected = [
        Expected(7, "population.cohorts.0.policy.option", "'cooperatte'",
                 r"'cooperatte' is not an option of any choice stage\. Fix: did you mean "
                 r"'cooperate'\?"),
        Expected(12, "stages.0.groups.by", "'all'", r"puts all 40 agents in one dialogue"),
        Expected(15, "stages.1.prompt", "{partner.secret}",
                 r"unknown template field \{partner\.secret\}"),
        Expected(20, "flow.1.to", "'plya'",
                 r"flow edge to unknown stage 'plya'\. Fix: did you mean 'play'\?"),
    ]
    assert main(["validate", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    _lines_of(err, path, expected)
    assert main(["run", str(path), "--backend", "scripted", "--out", str(tmp_path / "runs")]) == 2
    _lines_of(capsys.readouterr().err, path, expected)
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


def test_every_structural_mistake_is_reported_in_line_order(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "types.yaml"
    path.write_text(MANY_STRUCTURAL)
    assert main(["validate", str(path)]) == 2
    _lines_of(capsys.readouterr().err, path, [
        Expected(2, "rounds", "'ten'", r"should be a valid integer, got 'ten'"),
        Expected(6, "population.profiles.0.big_five.extraversion", "1.4",
                 r"should be less than or equal to 1, got 1\.4"),
        Expected(12, "stages.0.optoins", "'optoins'",
                 r"unknown key 'optoins'\. Fix: did you mean 'options'\?"),
        Expected(13, "stages.0.groups.by", "'random_pairz'",
                 r"got 'random_pairz'\. Fix: did you mean 'random_pairs'\?"),
    ])
