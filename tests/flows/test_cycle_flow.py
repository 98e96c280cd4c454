"""The cycle flow against a real local Prefect server, with a tiny NeMo model and real espeak-ng audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_flywheel.registry import Registry
from helpers import write_manifest, write_tiny_cycle_config


def run_cycle(manifest: Path, config: Path, **kw) -> tuple[dict, str]:
    from asr_flywheel.flows.cycle import flywheel_cycle

    state = flywheel_cycle(manifest=str(manifest), config_path=str(config), return_state=True, **kw)
    return state.result(), str(state.state_details.flow_run_id)


def artifacts_of(client, run_id: str) -> dict[str, object]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return {a.key or f"progress-{a.id}": a for a in arts}


@pytest.fixture(scope="module")
def full_cycle(prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("cycle")
    config = write_tiny_cycle_config(root / "flywheel.toml", root / "workspace", nemo_tiny_models["ctc"])
    result, run_id = run_cycle(tiny_dataset, config)
    return {"result": result, "run_id": run_id, "workspace": root / "workspace", "config": config}


def test_full_cycle_writes_every_artifact_and_registers_the_model(full_cycle):
    assert full_cycle["result"]["status"] == "complete"
    cycle = full_cycle["workspace"] / "cycles" / "cycle-0001"
    for rel in [
        "baseline/per_sample.jsonl",
        "baseline/results.csv",
        "baseline/leaderboard_cycle1.md",
        "baseline/offline_hyps.jsonl",
        "gate.json",
        "split/train.jsonl",
        "split/validation.jsonl",
        "model/adapted_model.nemo",
        "model/training_run_info.json",
        "after/offline_hyps.jsonl",
        "after/leaderboard_cycle2.md",
        "decision.json",
    ]:
        assert (cycle / rel).is_file(), rel
    record = json.loads((cycle / "cycle.json").read_text())
    assert record["status"] == "complete" and record["outcome"] == full_cycle["result"]["outcome"]
    assert set(record["steps"]) == {"baseline", "gate", "split", "train", "rescore", "decide", "register"}
    # the re-score covers held-out rows only, and says so
    after = json.loads((cycle / "after" / "metrics.json").read_text())
    split = json.loads((cycle / "split" / "split.json").read_text())
    assert after["n"] == split["validation_rows"] and after["scope"].startswith("held-out")
    assert "## Cycle comparison" in (cycle / "after" / "leaderboard_cycle2.md").read_text()
    models = Registry(full_cycle["workspace"] / "registry").models()
    assert [m.model_id for m in models] == [full_cycle["result"]["model_id"]]
    assert models[0].manifest_version == record["manifest_version"] and models[0].architecture == "ctc"


def test_leaderboards_gate_and_decision_are_artifacts_on_the_server(full_cycle, prefect_client):
    arts = artifacts_of(prefect_client, full_cycle["run_id"])
    for key in (
        "leaderboard-cycle-1",
        "leaderboard-cycle-2",
        "comparison-cycle-2",
        "gate-cycle-1",
        "gate-table-cycle-1",
        "decision-cycle-1",
        "decision-table-cycle-1",
        "ker-by-category-cycle-1",
    ):
        assert key in arts, sorted(arts)
    assert arts["leaderboard-cycle-1"].type == "markdown" and "## 5. Per-term KER" in arts["leaderboard-cycle-1"].data
    assert arts["decision-table-cycle-1"].type == "table"
    progress = [a for k, a in arts.items() if k.startswith("progress-")]
    assert len(progress) >= 3 and all(a.data == 100.0 for a in progress)  # 2 transcriptions + training, finished


def test_the_same_manifest_version_never_starts_a_second_cycle(full_cycle):
    from asr_flywheel.flows.cycle import flywheel_cycle

    manifest = json.loads((full_cycle["workspace"] / "cycles" / "cycle-0001" / "cycle.json").read_text())["manifest"]
    again = flywheel_cycle(manifest=manifest, config_path=str(full_cycle["config"]))
    assert again == {"status": "duplicate", "cycle": 1, "outcome": full_cycle["result"]["outcome"]}
    assert [p.name for p in (full_cycle["workspace"] / "cycles").iterdir()] == ["cycle-0001"]


def test_a_failed_gate_stops_the_cycle_with_its_reason(prefect_server, nemo_tiny_models, tiny_dataset, tmp_path):
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()][:12]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    small = write_manifest(tmp_path / "small.jsonl", rows)
    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    result, _ = run_cycle(small, config)
    assert result == {"status": "stopped-at-gate", "cycle": 1, "outcome": "GROW_MANIFEST"}
    assert not (tmp_path / "ws" / "cycles" / "cycle-0001" / "model").exists()


def test_bad_manifest_fails_fast_naming_the_rows(prefect_server, nemo_tiny_models, tmp_path):
    from asr_flywheel.errors import InputError

    bad = write_manifest(tmp_path / "bad.jsonl", [{"audio_filepath": "nope.wav", "text": "x"}])
    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    with pytest.raises(InputError, match="line 1: audio_filepath: audio file not found"):
        run_cycle(bad, config)
    assert not (tmp_path / "ws" / "cycles").exists()  # nothing claimed, nothing half-written


FAKE_SECRETS = {
    "HF_TOKEN": "hf_FAKEtokenSHOULDneverAPPEAR0123456789",
    "NGC_API_KEY": "nvapi-FAKEngcKEYshouldNEVERappear-9876543210",
    "NVIDIA_API_KEY": "nvapi-FAKEnvidiaKEYneverLOGGED-5555555555",
}


def test_secrets_appear_in_no_log_artifact_record_or_command_file(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path, monkeypatch
):
    for k, v in FAKE_SECRETS.items():
        monkeypatch.setenv(k, v)
    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"], epochs=1)
    result, run_id = run_cycle(tiny_dataset, config)
    assert result["status"] == "complete"

    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=10)  # logs are shipped in the background
    logs = prefect_client.read_logs(LogFilter(flow_run_id=LogFilterFlowRunId(any_=[run_id])))
    texts = {"logs": "\n".join(entry.message for entry in logs)}
    texts["artifacts"] = "\n".join(
        str(a.data) + str(a.description) for a in artifacts_of(prefect_client, run_id).values()
    )
    run = prefect_client.read_flow_run(run_id)
    texts["parameters"] = json.dumps(run.parameters, default=str)
    for p in (tmp_path / "ws").rglob("*"):
        if p.is_file() and p.suffix in (".json", ".jsonl", ".md", ".csv", ".sh", ".yaml", ".txt", ""):
            texts[str(p)] = p.read_text(errors="replace")
    assert len(logs) > 10 and any("container_command.sh" in k for k in texts)
    for where, text in texts.items():
        for name, secret in FAKE_SECRETS.items():
            assert secret not in text, f"{name} leaked into {where}"


def test_deploying_without_a_configured_deployer_is_refused_before_any_work(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    from asr_flywheel.errors import FlywheelError

    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    with pytest.raises(FlywheelError, match="no deployer is configured"):
        run_cycle(tiny_dataset, config, deploy_model=True)
    assert not (tmp_path / "ws").exists()
