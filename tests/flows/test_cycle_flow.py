"""The cycle flow against a real local Prefect server, with a tiny NeMo model and real espeak-ng audio."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cycle_runs import artifacts_of, cycle_with_review, force_keep, run_cycle

from asr_flywheel.registry import Registry
from helpers import write_manifest, write_tiny_cycle_config


@pytest.fixture(scope="module")
def full_cycle(prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path_factory):
    root = tmp_path_factory.mktemp("cycle")
    config = write_tiny_cycle_config(
        root / "flywheel.toml",
        root / "workspace",
        nemo_tiny_models["ctc"],
        cycle={"require_approval": True},
    )
    with pytest.MonkeyPatch.context() as mp:
        force_keep(mp)
        (result, run_id), champion_while_paused, candidates = cycle_with_review(
            tiny_dataset, config, prefect_client, approve=True, reviewer="dr-lee", reason="held-out drugs improved"
        )
    return {
        "result": result,
        "run_id": run_id,
        "workspace": root / "workspace",
        "config": config,
        "champion_while_paused": champion_while_paused,
        "candidates_while_paused": candidates,
    }


def test_full_cycle_writes_every_artifact_and_registers_the_model(full_cycle):
    assert full_cycle["result"].status == "complete"
    cycle = full_cycle["workspace"] / "cycles" / "cycle-0001"
    for rel in [
        "baseline/per_sample.jsonl",
        "baseline/results.csv",
        "baseline/leaderboard_cycle1.md",
        "baseline/offline_hyps.jsonl",
        "gate.json",
        "gate.md",
        "split/train.jsonl",
        "split/validation.jsonl",
        "model/adapted_model.nemo",
        "model/training_run_info.json",
        "after/offline_hyps.jsonl",
        "after/leaderboard_cycle2.md",
        "decision.json",
        "decision.md",
        "ker_by_category.png",
    ]:
        assert (cycle / rel).is_file(), rel
    record = json.loads((cycle / "cycle.json").read_text())
    assert record["status"] == "complete" and record["outcome"] == full_cycle["result"].outcome == "KEEP"
    assert set(record["steps"]) == {
        "baseline", "gate", "split", "train", "rescore", "decide", "register", "review", "promote"
    }  # fmt: skip
    # the re-score covers held-out rows only, and says so
    after = json.loads((cycle / "after" / "metrics.json").read_text())
    split = json.loads((cycle / "split" / "split.json").read_text())
    assert after["n"] == split["validation_rows"] and after["scope"].startswith("held-out")
    assert after["training_rows"] == 0
    assert "## Cycle comparison" in (cycle / "after" / "leaderboard_cycle2.md").read_text()
    models = Registry(full_cycle["workspace"] / "registry").models()
    assert [m.model_id for m in models] == [full_cycle["result"].model_id]
    assert models[0].manifest_version == record["manifest_version"] and models[0].architecture == "ctc"
    png = full_cycle["workspace"] / "charts" / "ker_by_category.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_the_champion_changes_only_after_approval(full_cycle):
    assert full_cycle["champion_while_paused"] is None  # registered as a candidate, not promoted, while paused
    assert [m.model_id for m in full_cycle["candidates_while_paused"]] == [full_cycle["result"].model_id]
    reg = Registry(full_cycle["workspace"] / "registry")
    assert reg.champion().model_id == full_cycle["result"].model_id and full_cycle["result"].champion_changed
    assert reg.champion().review == {**reg.champion().review, "approved": True, "reviewer": "dr-lee"}
    assert "approved by dr-lee" in reg.champion_history()[-1]["reason"]


def test_a_rejected_candidate_leaves_the_champion_and_says_who_and_why(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path, monkeypatch
):
    force_keep(monkeypatch)
    config = write_tiny_cycle_config(
        tmp_path / "flywheel.toml",
        tmp_path / "workspace",
        nemo_tiny_models["ctc"],
        epochs=1,
        cycle={"require_approval": True},
    )
    (result, run_id), champion_while_paused, _ = cycle_with_review(
        tiny_dataset, config, prefect_client, approve=False, reviewer="dr-okafor", reason="heparin got worse"
    )
    assert champion_while_paused is None
    assert result.outcome == "REJECTED" and result.decision == "KEEP" and not result.champion_changed
    assert result.review == "rejected by dr-okafor: heparin got worse"
    reg = Registry(tmp_path / "workspace" / "registry")
    assert reg.champion() is None and reg.champion_history() == []
    model = reg.get(result.model_id)
    assert model.review["approved"] is False and model.review["reviewer"] == "dr-okafor"
    record = json.loads((tmp_path / "workspace" / "cycles" / "cycle-0001" / "cycle.json").read_text())
    assert record["outcome"] == "REJECTED" and "dr-okafor" in record["review"]
    run = prefect_client.read_flow_run(run_id)
    assert "REJECTED" in run.state.message and "outcome-rejected" in run.tags


def test_artifacts_have_one_key_per_cycle_and_kind_and_are_flow_level(full_cycle, prefect_client):
    arts = artifacts_of(prefect_client, full_cycle["run_id"])
    for key in (
        "workspace-cycle-1-baseline-leaderboard",
        "workspace-cycle-1-heldout-leaderboard",
        "workspace-cycle-1-comparison",
        "workspace-cycle-1-baseline-ker-by-category",
        "workspace-cycle-1-heldout-ker-by-category",
        "workspace-cycle-1-gate",
        "workspace-cycle-1-gate-table",
        "workspace-cycle-1-decision",
        "workspace-cycle-1-decision-table",
        "workspace-cycle-1-chart",
        "workspace-cycle-1-outcome",
    ):
        assert key in arts, sorted(arts)
    board = arts["workspace-cycle-1-baseline-leaderboard"]
    assert board.type == "markdown" and "## 5. Per-term KER" in board.data and "Leaderboard — cycle 1" in board.data
    assert "Leaderboard — cycle 2" in arts["workspace-cycle-1-heldout-leaderboard"].data  # cycle N's held-out board
    for key in (
        "workspace-cycle-1-baseline-leaderboard",
        "workspace-cycle-1-heldout-leaderboard",
        "workspace-cycle-1-decision",
        "workspace-cycle-1-outcome",
    ):
        assert arts[key].task_run_id is None, key  # flow-level: on the run page itself
    assert "data:image/png;base64," in arts["workspace-cycle-1-chart"].data
    assert arts["workspace-cycle-1-decision-table"].type == "table"
    progress = [a for k, a in arts.items() if k.startswith("progress-")]
    assert len(progress) >= 3 and all(a.data == 100.0 for a in progress)  # 2 transcriptions + training, finished


def test_the_run_page_says_the_cycle_and_its_outcome(full_cycle, prefect_client):
    run = prefect_client.read_flow_run(full_cycle["run_id"])
    assert run.name == "workspace-cycle-1"
    assert {"workspace-cycle-1", "flywheel-workspace", "outcome-keep"} <= set(run.tags)
    assert run.state.message.startswith("cycle 1: KEEP (approved by dr-lee")


def test_the_same_manifest_version_never_starts_a_second_cycle(full_cycle, prefect_client):
    manifest = json.loads((full_cycle["workspace"] / "cycles" / "cycle-0001" / "cycle.json").read_text())["manifest"]
    again, run_id = run_cycle(Path(manifest), full_cycle["config"])
    assert (again.status, again.cycle, again.outcome) == ("duplicate", 1, "KEEP")
    assert [p.name for p in (full_cycle["workspace"] / "cycles").iterdir()] == ["cycle-0001"]
    run = prefect_client.read_flow_run(run_id)  # visibly different from a cycle that ran
    assert run.name == "workspace-cycle-1-already-cycled" and "duplicate" in run.tags
    assert "already cycled" in run.state.message and "nothing to do" in run.state.message


def test_a_failed_gate_stops_the_cycle_with_its_reason(prefect_server, nemo_tiny_models, tiny_dataset, tmp_path):
    small = small_manifest(tiny_dataset, tmp_path)
    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    result, _ = run_cycle(small, config)
    assert (result.status, result.cycle, result.outcome) == ("stopped-at-gate", 1, "GROW_MANIFEST")
    assert not (tmp_path / "ws" / "cycles" / "cycle-0001" / "model").exists()


def small_manifest(tiny_dataset: Path, tmp_path: Path) -> Path:
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()][:12]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    return write_manifest(tmp_path / "small.jsonl", rows)


def test_a_damaged_base_archive_is_refused_by_name_before_anything_is_claimed_and_the_corrected_run_proceeds(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    """The flow's own input checks open the model archive (a cycle that fails after its claim is resumed by a
    corrected rerun: tests/flows/test_cycle_failures.py)."""
    from asr_flywheel.errors import InputError

    small = small_manifest(tiny_dataset, tmp_path)
    config = write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    broken = tmp_path / "broken.nemo"
    broken.write_bytes(b"not a nemo archive")
    with pytest.raises(InputError, match=f"{broken} is not a readable .nemo archive"):
        run_cycle(small, config, base_model=str(broken))
    assert not (tmp_path / "ws" / "cycles").exists() and not (tmp_path / "ws" / "claims").exists()
    result, _ = run_cycle(small, config, base_model=str(nemo_tiny_models["ctc"]))
    assert (result.status, result.cycle) == ("stopped-at-gate", 1)
    record = json.loads((tmp_path / "ws" / "cycles" / "cycle-0001" / "cycle.json").read_text())
    assert record["start"]["model"] == str(nemo_tiny_models["ctc"])


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
    assert result.status == "complete"

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


def test_a_mistyped_hyperparameter_fails_the_cycle_before_scoring_or_claiming(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path, capsys
):
    """`flywheel cycle` as users run it: the trainer plugin's check runs before the baseline is scored (an hour on
    a real set) and before the version is claimed, so the corrected config runs as cycle 1 from the start."""
    from asr_flywheel.cycle import Workspace
    from asr_flywheel.flows.cli import main

    small = small_manifest(tiny_dataset, tmp_path)
    config = write_tiny_cycle_config(
        tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"], hyperparameters={"epochz": 3}
    )
    line = config.read_text().splitlines().index("epochz = 3") + 1
    assert main(["cycle", str(small), "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert f"hyperparameter(s) in {config}" in err and f"line {line}: hyperparameters.epochz" in err
    assert "Traceback" not in err  # the CLI's preflight refuses it before Prefect starts a run
    # A deployment (event or schedule) runs the flow itself: the flow's own check refuses it just as early.
    from asr_flywheel.errors import InputError
    from asr_flywheel.flows.cycle import flywheel_cycle

    with pytest.raises(InputError, match="epochz"):
        flywheel_cycle(manifest=str(small), config_path=str(config))
    workspace = Workspace(tmp_path / "ws")
    assert not list((tmp_path / "ws").rglob("baseline*")) and not workspace.cycles()
    assert not workspace.claims_dir.exists() or not list(workspace.claims_dir.glob("*.json"))

    write_tiny_cycle_config(tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"])
    assert main(["cycle", str(small), "--config", str(config)]) == 0
    record = json.loads((workspace.cycle(1).path / "cycle.json").read_text())
    assert (record["status"], record["outcome"]) == ("complete", "GROW_MANIFEST")
