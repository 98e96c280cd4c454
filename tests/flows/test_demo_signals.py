"""A demo stopped by Ctrl-C (SIGINT) or `timeout` (SIGTERM), sent to its whole process group as a terminal and
`timeout` do, stops what it started: its tritonserver, the Prefect server it ran for its workspace, and the
judge's decoder processes. Real `flywheel demo --quick` processes; the second run reuses the first one's
synthesised rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asr_flywheel.processes import alive

pytestmark = pytest.mark.slow
FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("demo-signals") / "ws"


# Ctrl-C (SIGINT) to the group runs by default; the SIGTERM variant (the same handler) is in the thorough set.
@pytest.mark.parametrize("signum", [pytest.param(signal.SIGTERM, marks=pytest.mark.thorough), signal.SIGINT])
def test_a_killed_demo_stops_its_tritonserver_and_its_prefect_server(signum, workspace, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "FLYWHEEL_DEBUG"}
    env.update(PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    log = tmp_path / "demo.log"
    proc = subprocess.Popen(
        [FLYWHEEL, "demo", "--quick", "--workspace", str(workspace)],
        env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    triton_state = workspace / "triton" / ".serve" / "server.json"
    deadline = time.monotonic() + 400
    # stopped while cycle 1's manifest is synthesised and judged: the builder's engines and the judge's decoder
    # processes, tritonserver and the Prefect server are all running then
    while not (triton_state.is_file() and "cycle 1: building" in log.read_text(errors="replace")):
        assert proc.poll() is None, log.read_text()[-3000:]
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.5)
    triton_pid = json.loads(triton_state.read_text())["pid"]
    prefect_pid = int((workspace / "prefect" / "server.pid").read_text().split()[0])
    os.killpg(proc.pid, signum)
    rc = proc.wait(timeout=120)
    out = log.read_text(errors="replace")
    assert rc == 128 + signum, out[-3000:]
    assert f"stopped the tritonserver this demo started (pid {triton_pid})" in out
    assert f"flywheel demo: interrupted by {signal.Signals(signum).name}" in out and "Traceback" not in out
    deadline = time.monotonic() + 30
    while (alive(triton_pid) or alive(prefect_pid)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not alive(triton_pid) and not alive(prefect_pid)
    while _children_of(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _children_of(proc.pid), f"processes of the demo's group outlived it: {_children_of(proc.pid)}"


def _children_of(pgid: int) -> list[int]:
    """Processes still in the demo's process group (its engines, judge workers, servers)."""
    pids = []
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                if os.getpgid(int(d.name)) == pgid and alive(int(d.name)):
                    pids.append(int(d.name))
            except OSError:
                continue
    return pids
