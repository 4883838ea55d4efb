"""Executors send a wave of requests to backends: in-process, or over Ray actors."""

from sim.executors.local import Executor, LocalExecutor, Request, Result

__all__ = ["Executor", "LocalExecutor", "Request", "Result"]
