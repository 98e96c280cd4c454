"""`flywheel server` / `flywheel worker`: what the README's UI path needs besides the server itself."""

from __future__ import annotations

import os
import subprocess
import sys

from asr_flywheel.config import CycleConfig, FlywheelConfig
from asr_flywheel.flows.cli import main
from asr_flywheel.flows.server import scheduled_deployments, stop_workers, worker_pids


def test_clock_driven_deployments_are_active_only_when_configured():
    bare = scheduled_deployments(FlywheelConfig())
    assert {name: active for name, (active, _) in bare.items()} == {"cycle-scheduled": False, "manifest-watch": False}
    assert (
        "no `[cycle] manifest`" in bare["cycle-scheduled"][1] and "empty `[cycle] watch`" in bare["manifest-watch"][1]
    )
    cfg = FlywheelConfig(cycle=CycleConfig(manifest="/data/m.jsonl", watch=("/data/m.jsonl",)))
    assert all(active for active, _ in scheduled_deployments(cfg).values())


def test_worker_without_a_server_says_how_to_start_one(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    assert main(["worker", "--home", str(tmp_path / "prefect")]) == 2
    assert "run `flywheel server up` first" in capsys.readouterr().err


def test_server_down_stops_the_workers_flywheel_worker_started(tmp_path):
    home = tmp_path / "prefect"
    home.mkdir()
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    (home / f"worker-{sleeper.pid}.pid").write_text(f"{sleeper.pid}\n")
    assert worker_pids(home) == [sleeper.pid]
    assert stop_workers(home) == [sleeper.pid]
    assert sleeper.wait(timeout=10) != 0 and worker_pids(home) == []
    assert not any(home.glob("worker-*.pid"))
    assert os.path.isdir(home)
