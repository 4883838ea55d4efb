"""Stage runners: generators that yield waves of requests and return outcome rows.

A runner is ``Plan = Generator[list[Request], list[Result], list[dict]]``: it yields a wave,
receives that wave's results, and finally returns event rows. The engine drives many plans
(groups, replicas) in lock-step so that their waves share one backend call.
"""

from sim.engine.stages.base import Plan, StageContext, prompt_hash
from sim.engine.stages.broadcast import run_broadcast
from sim.engine.stages.choice import run_choice
from sim.engine.stages.dialogue import run_dialogue
from sim.engine.stages.sanction import run_sanction
from sim.engine.stages.survey import run_survey

__all__ = ["Plan", "StageContext", "prompt_hash", "run_broadcast", "run_choice", "run_dialogue",
           "run_sanction", "run_survey"]
