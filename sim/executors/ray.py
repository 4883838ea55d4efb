"""Ray: model-replica actors, a wave executor over them, and the task primitives of sweeps.

This is the only module that imports :mod:`ray`. The driver keeps the (cheap) simulation
state; model replicas are Ray actors, each holding one backend (``num_gpus=1`` each where the
cluster has GPUs, a configurable number of CPU replicas otherwise). A wave is split into
contiguous slices, one per replica, and gathered back in order, so a :class:`RayExecutor`
answers exactly as a :class:`~sim.executors.local.LocalExecutor` does.

Example::

    from sim.executors.ray import RayExecutor, init_ray
    init_ray(None)                                 # local Ray, dashboard off
    executor = RayExecutor.start(RunConfig(backend="scripted"), replicas=2)
    run_scenario("scenarios/prisoners_dilemma.yaml", config, executor=executor)
    executor.close()

Sweeps (:mod:`sim.sweep.runner`) use :func:`submit`, :func:`wait_any`, :func:`outcome` and
:func:`alive_nodes` to run cohorts of cells as Ray tasks pinned to nodes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import ray
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from sim.errors import RunError
from sim.executors.local import ExecutorStats, LocalExecutor, Part, Request, Result, split_parts
from sim.requests import ModelInfo
from sim.scenario.spec import RunConfig

__all__ = ["RayExecutor", "RayPool", "TaskOutcome", "alive_nodes", "cancel", "current_node",
           "init_ray", "is_initialized", "outcome", "shutdown_ray", "submit", "wait_any"]

# Ray on loopback (tests/support/ray_node.py explains RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER): loopback
# clusters need this, usage stats and token auth stay off.
_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_USAGE_STATS_ENABLED": "0",
        "RAY_AUTH_MODE": "disabled"}


def init_ray(address: str | None = None, *, num_cpus: int | None = None) -> dict[str, Any]:
    """Start local Ray (``address=None``) or join a cluster; return the cluster resources.

    Inside a Ray job (``ray job submit``), ``$RAY_ADDRESS`` names the cluster and is joined
    when no address is given. A local runtime uses ``address="local"`` so that a stale
    ``ray start`` is never joined by accident, and runs without the dashboard. Already
    connected: reused.

    Raises:
        RunError: if the cluster at ``address`` cannot be reached.
    """
    for key, value in _ENV.items():
        os.environ.setdefault(key, value)
    if ray.is_initialized():
        return dict(ray.cluster_resources())
    # workers must import this project: pass the driver's import path on
    pythonpath = os.pathsep.join(p for p in (os.environ.get("PYTHONPATH"), _project_root()) if p)
    runtime_env: dict[str, Any] | None = {"env_vars": {**_ENV, "PYTHONPATH": pythonpath}}
    if address is None and os.environ.get("RAY_ADDRESS"):
        # a Ray job's entrypoint: join its cluster; the job's runtime env (working dir) holds
        address, runtime_env = os.environ["RAY_ADDRESS"], None
    try:
        if address is None:
            ray.init(address="local", include_dashboard=False, num_cpus=num_cpus,
                     runtime_env=runtime_env, logging_level="WARNING", log_to_driver=False)
        else:
            ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING",
                     log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise RunError(f"cannot join the Ray cluster at {address!r}: {exc}. Fix: start one "
                       "with 'ray start --head' and pass the address it prints "
                       "(host:port), or leave --ray-address out for local Ray.") from None
    return dict(ray.cluster_resources())


def is_initialized() -> bool:
    """Whether this process is connected to Ray."""
    return bool(ray.is_initialized())


def shutdown_ray() -> None:
    """Disconnect from Ray (stops a local runtime)."""
    if ray.is_initialized():
        ray.shutdown()


def _project_root() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def current_node() -> str:
    """The Ray node id of the calling process."""
    return str(ray.get_runtime_context().get_node_id())


def alive_nodes() -> list[dict[str, Any]]:
    """Alive nodes with CPUs, head first then by id: ``{"id", "cpus", "gpus", "address"}``."""
    nodes = []
    for node in ray.nodes():
        resources = node.get("Resources", {})
        if node.get("Alive") and resources.get("CPU", 0) > 0:
            nodes.append({"id": node["NodeID"], "cpus": resources.get("CPU", 0),
                          "gpus": resources.get("GPU", 0),
                          "address": node.get("NodeManagerAddress"),
                          "head": "node:__internal_head__" in resources})
    return sorted(nodes, key=lambda n: (not n["head"], n["id"]))


# ---------------------------------------------------------------------------------------------
# model replicas

class _Replica:
    """A model replica: one backend behind a local executor, in its own process."""

    def __init__(self, config: dict[str, Any]) -> None:
        from sim.backends.factory import open_backend

        self.executor = LocalExecutor(open_backend(RunConfig.model_validate(config)))

    def info(self) -> ModelInfo:
        return self.executor.model.info

    def run(self, requests: list[Request],
            sizes: list[int]) -> tuple[list[Result], list[ExecutorStats]]:
        """Answer a slice of a wave; the counts of each caller's share (``sizes``) apart."""
        stats = [ExecutorStats() for _ in sizes]
        return self.executor.run(requests, parts=list(zip(sizes, stats, strict=True))), stats

    def begin_step(self) -> None:
        self.executor.begin_step()

    def pid(self) -> int:
        return os.getpid()


def _slice_parts(owner: list[int], start: int, end: int) -> tuple[list[int], list[int]]:
    """The callers of ``owner[start:end]`` as runs: (sizes, caller of each run)."""
    sizes: list[int] = []
    callers: list[int] = []
    for caller in owner[start:end]:
        if callers and callers[-1] == caller:
            sizes[-1] += 1
        else:
            sizes.append(1)
            callers.append(caller)
    return sizes, callers


def _add_stats(into: ExecutorStats, diff: ExecutorStats) -> None:
    """Add a replica's counts to a caller's (waves are counted once per wave, by the caller)."""
    for key in ("requests", "prompt_tokens", "new_tokens", "cached_tokens", "failures",
                "retries", "model_seconds"):
        setattr(into, key, getattr(into, key) + getattr(diff, key))
    for k, v in diff.calls.items():
        into.calls[k] = into.calls.get(k, 0) + v


class RayPool:
    """Model-replica actors: ``num_gpus=1`` each on a GPU cluster, else CPU replicas.

    Args:
        config: the run config (backend, model, dtype, device, batch budget).
        replicas: number of actors (default: one per GPU, else 1).
        node: pin every actor to this node id (soft), e.g. the node of a sweep cohort.
    """

    def __init__(self, config: RunConfig, replicas: int | None = None, *,
                 node: str | None = None) -> None:
        gpus = int(ray.cluster_resources().get("GPU", 0)) if config.device == "cuda" else 0
        count = replicas or max(gpus, 1)
        if count < 1:
            raise RunError(f"--ray-replicas {count}: need at least 1. Fix: pass 1 or more.")
        options: dict[str, Any] = {"num_gpus": 1 if gpus else 0, "num_cpus": 1 if not gpus
                                   else 0, "max_restarts": 0}
        if node is not None:
            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
        actor = ray.remote(_Replica).options(**options)
        payload = config.model_dump(mode="json")
        self.actors = [actor.remote(payload) for _ in range(count)]

    def __len__(self) -> int:
        return len(self.actors)

    def info(self) -> ModelInfo:
        """The backend identity of replica 0 (all replicas load the same weights)."""
        return ray.get(self.actors[0].info.remote())

    def pids(self) -> list[int]:
        """Process ids of the replicas (for tests and diagnostics)."""
        return ray.get([a.pid.remote() for a in self.actors])

    def close(self) -> None:
        """Stop the actors."""
        for actor in self.actors:
            ray.kill(actor)
        self.actors = []


class RayExecutor:
    """Splits a wave across a :class:`RayPool` and gathers the results in order.

    Same interface as :class:`~sim.executors.local.LocalExecutor`: ``run``, ``stats`` and the
    backend's ``info``. Scripted requests travel with the model ones (each replica routes
    them to its scripted backend), so a wave is one round trip per replica.
    """

    def __init__(self, pool: RayPool) -> None:
        self.pool = pool
        self.stats = ExecutorStats()
        self.owns_ray = False  # whether the caller should shut Ray down after the run
        self._info: ModelInfo | None = None

    @classmethod
    def start(cls, config: RunConfig, replicas: int | None = None) -> RayExecutor:
        """A pool of replicas for ``config`` and an executor over it."""
        return cls(RayPool(config, replicas))

    @property
    def info(self) -> ModelInfo:
        """The backend identity, for the manifest."""
        if self._info is None:
            self._info = self.pool.info()
        return self._info

    def begin_step(self) -> None:
        """Every replica empties the prompt KV it kept between the last step's waves."""
        try:
            ray.get([actor.begin_step.remote() for actor in self.pool.actors])
        except ray.exceptions.RayError as exc:
            raise RunError(f"a Ray model replica failed: {exc}") from None

    def run(self, requests: Sequence[Request],
            parts: Sequence[Part] | None = None) -> list[Result]:
        """Answer a wave: contiguous slices to the replicas, results in request order.

        ``parts`` as in :meth:`~sim.executors.local.LocalExecutor.run` (default: one part,
        ``self.stats``).
        """
        parts = list(parts) if parts is not None else [(len(requests), self.stats)]
        owner = split_parts(parts, len(requests))
        n = min(len(self.pool.actors), len(requests))
        refs, callers, start = [], [], 0
        for i in range(n):
            end = start + len(requests) // n + (1 if i < len(requests) % n else 0)
            sizes, slice_callers = _slice_parts(owner, start, end)
            refs.append(self.pool.actors[i].run.remote(list(requests[start:end]), sizes))
            callers.append(slice_callers)
            start = end
        try:
            answers = ray.get(refs)
        except ray.exceptions.RayError as exc:
            raise RunError(f"a Ray model replica failed: {exc}") from None
        results: list[Result] = []
        for (part, diffs), slice_callers in zip(answers, callers, strict=True):
            results.extend(part)
            for caller, diff in zip(slice_callers, diffs, strict=True):
                _add_stats(parts[caller][1], diff)
        for _size, stats in parts:
            stats.waves += 1
        return results

    def close(self) -> None:
        """Stop the replicas."""
        self.pool.close()


# ---------------------------------------------------------------------------------------------
# tasks (sweep cohorts)

@dataclass(frozen=True, slots=True)
class TaskOutcome:
    """How a task ended: its return value, or ``error`` (``lost`` is set when its worker died)."""

    value: Any = None
    error: str | None = None
    lost: bool = False


def submit(fn: Callable[..., Any], *args: Any, node: str | None = None, num_cpus: float = 1,
           num_gpus: float = 0, kwargs: dict[str, Any] | None = None) -> Any:
    """Run ``fn(*args)`` as a Ray task (never retried by Ray: the caller counts attempts).

    Args:
        fn: a module-level function.
        args: its arguments (picklable).
        node: pin to this node id (soft: another node if it is gone).
        num_cpus: CPUs the task holds.
        num_gpus: GPUs the task holds.
        kwargs: its keyword arguments.

    Returns:
        A handle for :func:`wait_any`, :func:`outcome` and :func:`cancel`.
    """
    options: dict[str, Any] = {"num_cpus": num_cpus, "num_gpus": num_gpus, "max_retries": 0,
                               "retry_exceptions": False}
    if node is not None:
        options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(node, soft=True)
    return ray.remote(fn).options(**options).remote(*args, **(kwargs or {}))


def wait_any(handles: Sequence[Any], timeout: float) -> list[Any]:
    """Handles among ``handles`` that finished within ``timeout`` seconds."""
    if not handles:
        return []
    done, _ = ray.wait(list(handles), num_returns=len(handles), timeout=timeout)
    return done


def outcome(handle: Any) -> TaskOutcome:
    """The result of a finished task; errors and lost workers become a :class:`TaskOutcome`."""
    try:
        return TaskOutcome(value=ray.get(handle))
    except (ray.exceptions.WorkerCrashedError, ray.exceptions.NodeDiedError,
            ray.exceptions.LocalRayletDiedError, ray.exceptions.ObjectLostError) as exc:
        return TaskOutcome(error=f"worker lost: {type(exc).__name__}", lost=True)
    except ray.exceptions.TaskCancelledError:
        return TaskOutcome(error="cancelled")
    except ray.exceptions.RayTaskError as exc:
        cause = exc.cause if exc.cause is not None else exc
        return TaskOutcome(error=f"{type(cause).__name__}: {cause}")
    except ray.exceptions.RayError as exc:
        return TaskOutcome(error=f"{type(exc).__name__}: {exc}", lost=True)


def cancel(handles: Sequence[Any]) -> None:
    """Stop running tasks (force: their workers are killed)."""
    for handle in handles:
        with contextlib.suppress(ray.exceptions.RayError, ValueError, TypeError):
            ray.cancel(handle, force=True)
