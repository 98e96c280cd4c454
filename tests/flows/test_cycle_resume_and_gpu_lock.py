"""Cycles as real processes against the session's Prefect server: a kill mid-training, and two cycles that want the
same GPU slot."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import cycle_record, subprocess_env, wait_until, write_manifest, write_tiny_cycle_config


def start_cycle(server, config: Path, manifest: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "asr_flywheel.flows.cli", "--config", str(config), "cycle", str(manifest)],
        env=subprocess_env(server, config),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=Path(__file__).resolve().parents[2],
    )


def test_a_cycle_killed_mid_training_resumes_without_redoing_finished_steps(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    ws = tmp_path / "ws"
    config = write_tiny_cycle_config(tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=12)
    log = tmp_path / "first.log"
    proc = start_cycle(prefect_server, config, tiny_dataset, log)
    model_dir = ws / "cycles" / "cycle-0001" / "model"
    # kill once training is under way and has saved its first epoch checkpoint
    wait_until(
        lambda: "train" in cycle_record(ws).get("running", {}) and list(model_dir.glob(".checkpoints/*/last.ckpt")),
        proc,
        log,
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    before = cycle_record(ws)
    assert set(before["steps"]) == {"baseline", "gate", "split"}
    assert not (model_dir / "adapted_model.nemo").exists()  # nothing that looks like a finished model
    assert not (model_dir / "training_run_info.json").exists()
    baseline_mtime = (ws / "cycles" / "cycle-0001" / "baseline" / "per_sample.jsonl").stat().st_mtime_ns

    from asr_flywheel.flows.cycle import flywheel_cycle

    result = flywheel_cycle(manifest=str(tiny_dataset), config_path=str(config))
    assert result.status == "complete" and result.cycle == 1
    after = cycle_record(ws)
    for step in ("baseline", "gate", "split"):
        assert after["steps"][step]["finished_at"] == before["steps"][step]["finished_at"], step
    assert (ws / "cycles" / "cycle-0001" / "baseline" / "per_sample.jsonl").stat().st_mtime_ns == baseline_mtime
    info = json.loads((model_dir / "training_run_info.json").read_text())
    assert info["resumed_from_checkpoint"] is True  # finished epochs were not trained again
    assert not list(ws.rglob("*.tmp")) and not (model_dir / ".checkpoints").exists()
    assert [p.name for p in (ws / "cycles").iterdir()] == ["cycle-0001"]


def test_two_cycles_wanting_the_same_gpu_slot_train_one_after_the_other(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    runs = []
    for name in ("a", "b"):
        manifest = write_manifest(tmp_path / name / "manifest.jsonl", [{**r, "context_type": name} for r in rows])
        config = write_tiny_cycle_config(
            tmp_path / name / "fw.toml", tmp_path / name / "ws", nemo_tiny_models["ctc"], epochs=4
        )
        log = tmp_path / name / "cycle.log"
        runs.append((start_cycle(prefect_server, config, manifest, log), tmp_path / name / "ws", log))
    for proc, _, log in runs:
        assert proc.wait(timeout=400) == 0, log.read_text()[-3000:]
    spans = sorted((cycle_record(ws)["gpu_acquired"], cycle_record(ws)["gpu_released"]) for _, ws, _ in runs)
    assert all(rec["status"] == "complete" for rec in (cycle_record(ws) for _, ws, _ in runs))
    assert spans[0][1] <= spans[1][0], f"training overlapped on the GPU slot: {spans}"


def test_a_cycle_killed_with_its_temporary_server_mid_training_frees_the_gpu_slot_for_the_rerun(
    nemo_tiny_models, tiny_dataset, tmp_path
):
    """No PREFECT_API_URL: the cycle's temporary server keeps its database in <workspace>/prefect and dies with the
    cycle's process group. Prefect alone would leave the slot counted as taken forever; the rerun reclaims it from
    the dead holder, says so, and completes."""
    ws = tmp_path / "ws"
    config = write_tiny_cycle_config(tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=6)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(FLYWHEEL_CONFIG=str(config), PREFECT_SERVER_ANALYTICS_ENABLED="false", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "asr_flywheel.flows.cli", "cycle", str(tiny_dataset)]

    def start(log: Path) -> subprocess.Popen:
        return subprocess.Popen(
            command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
        )

    first_log = tmp_path / "first.log"
    proc = start(first_log)
    wait_until(
        lambda: "gpu_acquired" in cycle_record(ws) and "train" in cycle_record(ws).get("running", {}), proc, first_log
    )
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert (ws / "prefect" / "prefect.db").is_file()  # the workspace owns its Prefect state

    second_log = tmp_path / "second.log"
    rerun = start(second_log)
    assert rerun.wait(timeout=400) == 0, second_log.read_text()[-3000:]
    text = second_log.read_text()
    assert "GPU slot gpu-0: reclaimed from flow run" in text and "is gone" in text, text[-3000:]
    assert cycle_record(ws)["status"] == "complete"
