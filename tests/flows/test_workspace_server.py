"""A workspace owns its Prefect state, as users run it: `flywheel cycle` without PREFECT_API_URL records its runs in
<workspace>/prefect, which `flywheel server up` then shows; one cycle at a time per workspace; and a GPU slot left by
a killed cycle *and* a killed `flywheel server up` is reclaimed after the server restarts. Real processes, real
Prefect servers, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import cycle_record, free_ports, wait_until, write_manifest, write_tiny_cycle_config

pytestmark = pytest.mark.slow
FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))


def env_for(config: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "FLYWHEEL_DEBUG"}
    env.update(FLYWHEEL_CONFIG=str(config), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    return env


def flywheel(argv: list[str], config: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [FLYWHEEL, *argv], env=env_for(config), stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def training(ws: Path) -> bool:
    rec = cycle_record(ws)
    return "gpu_acquired" in rec and "train" in rec.get("running", {})


def server_up(ws: Path, config: Path, log: Path) -> str:
    (port,) = free_ports(1)
    done = subprocess.run(
        [FLYWHEEL, "server", "up", "--port", str(port)], env=env_for(config), capture_output=True, text=True
    )
    log.write_text(done.stdout + done.stderr)
    assert done.returncode == 0, done.stderr
    return f"http://127.0.0.1:{port}/api"


def flow_runs(api: str) -> list[dict]:
    import httpx

    return httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30).json()


def test_a_second_cycle_of_the_workspace_is_refused_naming_the_first_and_shows_cancelled(
    nemo_tiny_models, tiny_dataset, tmp_path
):
    ws = tmp_path / "cardiology"
    config = write_tiny_cycle_config(
        tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=200, hyperparameters={"early_stopping_patience": 0}
    )
    first = flywheel(["cycle", str(tiny_dataset)], config, tmp_path / "first.log")
    try:
        wait_until(lambda: training(ws), first, tmp_path / "first.log")
        rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()][:-1]
        for r in rows:
            r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
        other = write_manifest(tmp_path / "other.jsonl", rows)  # another version, same workspace
        second = subprocess.run([FLYWHEEL, "cycle", str(other)], env=env_for(config), capture_output=True, text=True)
        assert second.returncode == 2, second.stderr[-3000:]
        assert "runs one cycle at a time, and another is running: flow run cardiology-cycle-1" in second.stderr
        assert f"pid {first.pid}" in second.stderr and "--wait" in second.stderr
        assert "Traceback" not in second.stderr
        api = f"http://127.0.0.1:{(ws / 'prefect' / 'server.pid').read_text().split()[1]}/api"
        states = {r["name"]: r["state_type"] for r in flow_runs(api)}
        assert states["cardiology-cycle-1"] == "RUNNING"
        assert "CANCELLED" in [s for n, s in states.items() if n != "cardiology-cycle-1"]  # never FAILED
        assert "FAILED" not in states.values()
    finally:
        os.killpg(first.pid, signal.SIGINT)
        first.wait(timeout=120)


@pytest.mark.thorough
def test_the_runs_of_a_cli_cycle_are_in_the_workspace_server_and_a_slot_left_by_killed_cycle_and_server_is_reclaimed(
    nemo_tiny_models, tiny_dataset, tmp_path
):
    """Opt-in (`pytest -m thorough`, about 2 minutes): the default run reclaims a dead holder's slot once, with the
    cycle's temporary server (tests/flows/test_cycle_resume_and_gpu_lock.py); this is the `flywheel server up`
    variant, where the restarted server still holds the lease."""
    ws = tmp_path / "oncology"
    config = write_tiny_cycle_config(
        tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=200, hyperparameters={"early_stopping_patience": 0}
    )
    api = server_up(ws, config, tmp_path / "up.log")  # the ops team's server for this workspace
    cycle = flywheel(["cycle", str(tiny_dataset)], config, tmp_path / "cycle.log")
    wait_until(lambda: training(ws), cycle, tmp_path / "cycle.log")
    server_pid = int((ws / "prefect" / "server.pid").read_text().split()[0])
    os.killpg(cycle.pid, signal.SIGKILL)  # the cycle and the server die together: a power cut, an OOM kill
    os.killpg(server_pid, signal.SIGKILL)
    cycle.wait()

    api = server_up(ws, config, tmp_path / "up-again.log")
    held = subprocess.run([FLYWHEEL, "server", "slots"], env=env_for(config), capture_output=True, text=True)
    assert "gpu-0: held (1/1) by flow run oncology-cycle-1" in held.stdout, held.stdout + held.stderr
    short = write_tiny_cycle_config(tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=1)
    rerun = subprocess.run([FLYWHEEL, "cycle", str(tiny_dataset)], env=env_for(short), capture_output=True, text=True)
    try:
        assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
        # freed by the restarted server (the lease was kept on disk and expired) or reclaimed by the rerun from the
        # dead holder, whichever came first; either way the rerun trained
        assert cycle_record(ws)["status"] == "complete"
        runs = {r["name"]: r for r in flow_runs(api)}
        assert "oncology-cycle-1" in runs  # the server up lists what the CLI ran
        import httpx

        arts = httpx.post(f"{api}/artifacts/filter", json={}, timeout=30).json()
        assert {"oncology-cycle-1-gate", "oncology-cycle-1-outcome"} <= {a["key"] for a in arts}
        slots = subprocess.run([FLYWHEEL, "server", "slots"], env=env_for(config), capture_output=True, text=True)
        assert slots.returncode == 0 and "gpu-0: free" in slots.stdout
    finally:
        subprocess.run([FLYWHEEL, "server", "down"], env=env_for(config), capture_output=True)
