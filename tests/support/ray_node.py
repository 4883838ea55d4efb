"""Run the ``ray`` command line with this interpreter, for the test clusters.

``ray start`` launches its daemons and workers with the interpreter and PATH it finds; run from
a virtual environment that is not activated, they would not find the venv's ``ray`` and
packages. This wrapper puts the interpreter's ``bin`` first on PATH and the project on
PYTHONPATH, then hands over to Ray's CLI::

    python tests/support/ray_node.py start --head --block --node-ip-address 127.0.0.1 ...

Loopback clusters: with ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` Ray keeps 127.0.0.1 (instead of
rewriting it to the eth0 address, where a loopback head does not listen), but its CLI then
refuses to start a second node. For a joining node (``--address``) this wrapper therefore
runs the CLI with the variable at 1 and keeps loopback addresses as given, so a second node
joins a head on 127.0.0.1.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

if __name__ == "__main__":
    os.environ["PATH"] = os.pathsep.join([str(Path(sys.executable).parent),
                                          os.environ.get("PATH", "")])
    os.environ["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    for key in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_USAGE_STATS_ENABLED"):
        os.environ.setdefault(key, "0")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    joining = "--address" in sys.argv and "--head" not in sys.argv
    if joining:
        os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "1"
    from ray._private import services
    from ray.scripts.scripts import main

    if joining:
        def _keep(host: str) -> str:
            return host

        def _loopback(address: str | None = None) -> str:
            return "127.0.0.1"

        services.resolve_ip_for_localhost = _keep
        services.get_node_ip_address = _loopback

    sys.argv = ["ray", *sys.argv[1:]]
    sys.exit(main())
