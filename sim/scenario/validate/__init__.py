"""Cross-field checks of a scenario, one module per concept.

:func:`check_scenario` (in :mod:`~sim.scenario.validate.checks`) runs them all: population
and cohorts (:mod:`.population`), roles (:mod:`.roles`), the network (:mod:`.network`),
stages (:mod:`.stages`, with :mod:`.grouping`, :mod:`.payoffs`, :mod:`.prompts`,
:mod:`.survey`) and the flow (:mod:`.flow`). :mod:`.suggest` spells "did you mean".
"""

from sim.scenario.validate.checks import check_scenario, scenario_problems
from sim.scenario.validate.network import network_generator
from sim.scenario.validate.stages import RESERVED_STAGE_IDS
from sim.scenario.validate.suggest import did_you_mean

__all__ = ["RESERVED_STAGE_IDS", "check_scenario", "did_you_mean", "network_generator",
           "scenario_problems"]
