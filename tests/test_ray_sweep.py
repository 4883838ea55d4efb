"""Sweeps on a real two-node Ray cluster on this machine (slow).

The cluster: ``ray start --head`` on 127.0.0.1 and a second ``ray start --address ...`` node
with its own resources, both launched with ``--block`` in their own process groups (through
tests/support/ray_node.py, so they run this interpreter) and torn down by killing exactly those
process groups and the processes of their session. Sweeps are submitted from a subprocess
with ``traitlab sweep --ray-address``, as a user would. Every wait is bounded.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.ray]

ROOT = Path(__file__).resolve().parents[1]
NODE = ROOT / "tests" / "support" / "ray_node.py"
PAIR = ROOT / "bench" / "pd_pair.yaml"


def _env(**extra: str) -> dict[str, str]:
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH"))
                                         if p)}
    env.update(extra)
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive_nodes(address: str) -> int:
    code = (f"import ray; ray.init(address={address!r}, logging_level='ERROR', "
            "log_to_driver=False); print(sum(1 for n in ray.nodes() if n['Alive']))")
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=_env(), timeout=60, check=False)
    except subprocess.TimeoutExpired:
        return 0
    lines = out.stdout.strip().splitlines()
    return int(lines[-1]) if lines and lines[-1].isdigit() else 0


def _wait_nodes(address: str, count: int, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _alive_nodes(address) >= count:
            return
        time.sleep(1)
    raise TimeoutError(f"the test cluster at {address} did not reach {count} nodes")


def _kill_group(proc: subprocess.Popen) -> None:
    for sig, wait in ((signal.SIGTERM, 20), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _kill_session(marker: str) -> None:
    """SIGKILL leftover processes whose command line names our cluster's temp dir."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if marker in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry.name), signal.SIGKILL)


@pytest.fixture(scope="module")
def cluster():
    """Address of a two-node Ray cluster on 127.0.0.1 (1 CPU each); torn down afterwards."""
    port = _free_port()
    temp = tempfile.mkdtemp(prefix="tlray-", dir="/tmp")  # short: Ray's socket paths
    address = f"127.0.0.1:{port}"
    logs = [open(Path(temp) / f"node{i}.log", "w") for i in range(2)]  # noqa: SIM115
    common = ["--block", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
              "--disable-usage-stats"]
    procs = []
    try:
        procs.append(subprocess.Popen(
            [sys.executable, str(NODE), "start", "--head", "--port", str(port),
             "--include-dashboard", "false", "--temp-dir", temp, *common],
            stdout=logs[0], stderr=subprocess.STDOUT, env=_env(), start_new_session=True))
        _wait_nodes(address, 1)
        procs.append(subprocess.Popen(
            [sys.executable, str(NODE), "start", "--address", address,
             "--resources", '{"second_node": 1}', *common],
            # a node joining a loopback head passes Ray's multi-node-on-one-host check only so
            stdout=logs[1], stderr=subprocess.STDOUT,
            env=_env(RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="1"), start_new_session=True))
        _wait_nodes(address, 2)
        yield address
    finally:
        for proc in reversed(procs):
            _kill_group(proc)
        _kill_session(temp)
        for log in logs:
            log.close()


def _write_sweep(tmp_path: Path, body: str) -> Path:
    (tmp_path / "pd_pair.yaml").write_text(PAIR.read_text())
    path = tmp_path / "sweep.yaml"
    path.write_text(textwrap.dedent(body).lstrip())
    return path


SWEEP = """
    name: cluster-sweep
    scenario: pd_pair.yaml
    seeds: [0, 1]
    vary:
      - grid:
          population.personality.mean.agreeableness: [0.2, 0.8]
    run: {backend: scripted}
    max_retries: 2
"""


def _sweep_cmd(path: Path, address: str, out: Path, *extra: str,
               slow: float | None = None) -> list[str]:
    """``traitlab sweep`` (with every cell sleeping ``slow`` seconds before each step)."""
    cli = (["-m", "sim.cli.main"] if slow is None
           else ["-m", "tests.support.faults", "slow", str(slow)])
    return [sys.executable, *cli, "sweep", str(path), "--ray-address", address,
            "--out", str(out), "--quiet", *extra]


def _manifest(root: Path) -> dict:
    return json.loads((root / "sweep.json").read_text())


def _listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.is_dir())


def _mtimes(root: Path, ids: list[str]) -> dict[str, int]:
    return {i: (root / i / "manifest.json").stat().st_mtime_ns for i in ids}


def _check_cells(root: Path, ids: list[str], steps: int) -> None:
    """Every cell directory complete, with each step's shard once, nothing else."""
    from analysis.io import load_run

    assert _listing(root) == sorted(ids)
    for cell_id in ids:
        run = load_run(root / cell_id)
        assert run.manifest["status"] == "complete"
        assert run.manifest["steps_completed"] == steps
        shards = sorted(p.name for p in (root / cell_id / "events").iterdir())
        assert shards == [f"step-{s:06d}.parquet" for s in range(1, steps + 1)]
        keys = run.events.select("step", "agent", "turn")
        assert keys.unique().height == keys.height


def test_sweep_runs_cells_on_both_nodes(tmp_path, cluster):
    path = _write_sweep(tmp_path, SWEEP)
    out = subprocess.run(_sweep_cmd(path, cluster, tmp_path / "runs"), capture_output=True,
                         text=True, env=_env(), timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    root = tmp_path / "runs" / "cluster-sweep"
    manifest = _manifest(root)
    assert manifest["status"] == "complete"
    assert len(manifest["nodes"]) == 2
    nodes = {c["node"] for c in manifest["cells"]}
    assert len(nodes) == 2 and nodes <= {n["id"] for n in manifest["nodes"]}
    _check_cells(root, [c["id"] for c in manifest["cells"]], steps=6)


def test_killed_worker_cell_is_retried(tmp_path, cluster):
    path = _write_sweep(tmp_path, SWEEP)
    root = tmp_path / "runs" / "cluster-sweep"
    proc = subprocess.Popen(_sweep_cmd(path, cluster, tmp_path / "runs", slow=1.0),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    killed = None
    try:
        deadline = time.monotonic() + 180
        while killed is None and time.monotonic() < deadline and proc.poll() is None:
            for worker in (root / ".staging").glob("*/worker.json"):
                shards = list(worker.parent.glob("*/*/*/events/step-000002.parquet"))
                if shards:
                    killed = json.loads(worker.read_text())
                    os.kill(killed["pid"], signal.SIGKILL)  # the cohort's worker, mid-sweep
                    break
            time.sleep(0.2)
        assert killed is not None, "no cohort reached step 2 in time"
        _, stderr = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    manifest = _manifest(root)
    assert manifest["status"] == "complete"
    cells = {c["id"]: c for c in manifest["cells"]}
    for cell_id in killed["cells"]:
        assert cells[cell_id]["attempts"] == 2, cells[cell_id]
        assert "worker lost" in cells[cell_id]["errors"][0]["error"]
    others = [c for i, c in cells.items() if i not in killed["cells"]]
    assert all(c["attempts"] == 1 for c in others)
    _check_cells(root, list(cells), steps=6)


def test_ctrl_c_then_resume_runs_only_what_is_missing(tmp_path, cluster):
    body = SWEEP.replace("""      - grid:
          population.personality.mean.agreeableness: [0.2, 0.8]""", """      - zip:
          rounds: [1, 4]""")
    path = _write_sweep(tmp_path, body)
    root = tmp_path / "runs" / "cluster-sweep"
    proc = subprocess.Popen(_sweep_cmd(path, cluster, tmp_path / "runs", slow=1.0),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=_env())
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and proc.poll() is None:
            if (root / "sweep.json").is_file() and sum(
                    c["status"] == "complete" for c in _manifest(root)["cells"]) >= 2:
                break
            time.sleep(0.2)
        assert proc.poll() is None, "the sweep ended before it could be interrupted"
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, stderr[-3000:]
    assert "--resume" in stderr
    manifest = _manifest(root)
    assert manifest["status"] == "interrupted"
    status = {c["id"]: c["status"] for c in manifest["cells"]}
    done = sorted(i for i, s in status.items() if s == "complete")
    missing = sorted(i for i, s in status.items() if s != "complete")
    assert len(done) == 2 and set(status[i] for i in missing) == {"pending"}
    assert _listing(root) == done  # no partial directory of the interrupted cells
    before = _mtimes(root, done)

    out = subprocess.run(_sweep_cmd(path, cluster, tmp_path / "runs", "--resume"),
                         capture_output=True, text=True, env=_env(), timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert _mtimes(root, done) == before  # complete cells were not run again
    manifest = _manifest(root)
    assert manifest["status"] == "complete"
    assert all(c["attempts"] == 1 for c in manifest["cells"])
    assert _listing(root) == sorted(status)
    every = _mtimes(root, sorted(status))

    # a finished sweep: --resume runs nothing
    out = subprocess.run(_sweep_cmd(path, cluster, tmp_path / "runs", "--resume"),
                         capture_output=True, text=True, env=_env(), timeout=120, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "4 complete, 0 failed" in out.stdout
    assert _mtimes(root, sorted(status)) == every
