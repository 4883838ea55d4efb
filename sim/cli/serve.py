"""``traitlab serve``: a local model behind an OpenAI-compatible HTTP server.

Flag defaults come from :class:`~sim.backends.hf.config.HFConfig` (the model settings) and
:func:`sim.serve.serve` (address and batching window).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from typing import Any, get_args

__all__ = ["add_parser", "main"]

_SERVE_EXAMPLE = """example:
  traitlab serve                                   # embedded SmolLM2 on 127.0.0.1:8000
  traitlab serve --model ~/models/my-hf-folder --port 8001 --device cuda --dtype bfloat16
  traitlab serve --steering                        # requests may carry steering coefficients
  traitlab run scenarios/prisoners_dilemma.yaml --backend openai \\
      --base-url http://127.0.0.1:8000/v1
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser],
               fmt: type[argparse.HelpFormatter]) -> None:
    """Add the ``serve`` sub-command."""
    from sim.backends.hf.config import HFConfig
    from sim.serve.server import serve

    fields = HFConfig.model_fields
    params = inspect.signature(serve).parameters

    def default(name: str) -> Any:
        return fields[name].default if name in fields else params[name].default

    serve_cmd = sub.add_parser(
        "serve", help="serve a local model over an OpenAI-compatible HTTP API, batching requests",
        epilog=_SERVE_EXAMPLE, formatter_class=fmt)
    serve_cmd.add_argument("--model", default=default("model"),
                           help="local HF model folder (default: embedded SmolLM2-135M-Instruct)")
    serve_cmd.add_argument("--host", default=default("host"),
                           help=f"address to bind (default {default('host')}, this machine only; "
                                "any other address is reachable by others, with no auth)")
    serve_cmd.add_argument("--port", type=int, default=default("port"),
                           help=f"TCP port (default {default('port')}; 0 picks a free one)")
    serve_cmd.add_argument("--device", default=default("device"),
                           help=f"cpu, cuda or cuda:N (default {default('device')})")
    serve_cmd.add_argument("--dtype", choices=list(get_args(fields["dtype"].annotation)),
                           default=default("dtype"))
    serve_cmd.add_argument("--window-ms", type=float, default=default("window_ms"),
                           help="how long a wave's first request waits for others "
                                f"(default {default('window_ms')})")
    serve_cmd.add_argument("--batch-tokens", type=int, default=default("batch_tokens"),
                           help="token budget of one forward batch")
    serve_cmd.add_argument("--steering", action="store_true",
                           help="load (or compute and cache) the Big Five steering directions "
                                "so that requests may carry steering coefficients")


def main(args: argparse.Namespace, argv: list[str]) -> int:
    """Load the model and serve it until Ctrl-C.

    Raises:
        RunError: a bad flag value (one line).
    """
    from sim.backends.hf.backend import HFBackend
    from sim.backends.hf.config import HFConfig
    from sim.errors import RunError
    from sim.serve import serve

    if not 0 <= args.port <= 65535:
        raise RunError(f"--port {args.port}: use 0 .. 65535.")
    if args.window_ms < 0:
        raise RunError(f"--window-ms {args.window_ms}: use 0 or more.")
    if args.model is None:
        from sim.backends.hf.model_store import check_default_model

        check_default_model()
    config = HFConfig.build(args.model, dtype=args.dtype, device=args.device,
                            batch_tokens=args.batch_tokens)
    print("traitlab serve: loading the model ...", file=sys.stderr, flush=True)
    backend = HFBackend(config)
    if args.steering:
        from sim.run.conditioning import prepare_steering

        dirs = prepare_steering(backend)
        print(f"traitlab serve: steering directions on layers {list(dirs.layers)}",
              file=sys.stderr, flush=True)
    try:
        serve(backend, host=args.host, port=args.port, window_ms=args.window_ms)
    except OSError as exc:  # the port is taken, or the address is not this machine's
        raise RunError(f"--host {args.host} --port {args.port}: cannot listen "
                       f"({exc.strerror or exc}). Fix: pick another --port (0: any free one)."
                       ) from None
    return 0
