"""The control-set guard inside the cycle (issue 9 §3), against a real local Prefect server with a tiny NeMo model
and real espeak-ng audio: the general-English control set is scored with the starting model and the candidate,
and a candidate whose control WER rises beyond `[decision] max_control_wer_rise` is REGRESSED, never promoted.

The guard is made to trip deterministically through its threshold, never through a hard-coded metric:
`max_control_wer_rise = -1` allows no control WER above zero (the candidate would have to transcribe the control
set perfectly), which the tiny model cannot; the test checks the recorded numbers say exactly that. KEEP is
otherwise forced (`force_keep` replaces the KER rule), so the guard alone stops the promotion.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cycle_runs import artifacts_of, force_keep, run_cycle

from asr_flywheel.registry import Registry
from helpers import write_manifest, write_tiny_cycle_config


@pytest.fixture(autouse=True)
def _keep(monkeypatch):
    force_keep(monkeypatch)


pytestmark = pytest.mark.slow

GENERAL = ["the weather is nice today", "please close the door behind you", "we walked to the station"]


@pytest.fixture(scope="module")
def control_manifest(synth, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("control")
    rows = []
    for i, text in enumerate(GENERAL):
        synth(text, root / f"c{i}.wav")
        rows.append({"audio_filepath": f"c{i}.wav", "text": text, "duration": None})
    return write_manifest(root / "control.jsonl", rows)


def test_a_candidate_whose_control_wer_rises_too_much_is_regressed_and_not_promoted_and_control_scores_are_reused(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, control_manifest, tmp_path
):
    ws = tmp_path / "workspace"
    config = write_tiny_cycle_config(
        tmp_path / "flywheel.toml",
        ws,
        nemo_tiny_models["ctc"],
        epochs=1,
        decision={"max_control_wer_rise": -1.0},
        cycle={"control_manifest": str(control_manifest)},
    )
    result, run_id = run_cycle(tiny_dataset, config)
    assert result.outcome == result.decision == "REGRESSED" and not result.champion_changed
    assert Registry(ws / "registry").champion() is None

    cycle = ws / "cycles" / "cycle-0001"
    record = json.loads((cycle / "cycle.json").read_text())
    control = record["control"]
    assert control["n"] == len(GENERAL) and control["regressed"] and control["max_rise"] == -1.0
    assert control["wer_after"] > 0  # why the guard tripped: the only allowed control WER was 0
    assert {"control_before", "control_after"} <= set(record["steps"]) and "promote" not in record["steps"]
    before = json.loads(Path(record["steps"]["control_before"]["metrics"]).read_text())
    after = json.loads(Path(record["steps"]["control_after"]["metrics"]).read_text())
    assert (before["wer"], after["wer"]) == (control["wer_before"], control["wer_after"])
    assert before["model"] == str(nemo_tiny_models["ctc"]) and after["model"] == record["steps"]["train"]["model"]

    decision = json.loads((cycle / "decision.json").read_text())
    assert decision["decision"] == "REGRESSED" and decision["control"] == control
    assert "control-set wer" in decision["reason"].lower() and "KER alone would say KEEP" in decision["reason"]
    board = (cycle / "after" / "leaderboard_cycle2.md").read_text()
    assert "ontrol set" in board and "REGRESSED" in board
    arts = artifacts_of(prefect_client, run_id)
    assert "workspace-cycle-1-control" in arts and arts["workspace-cycle-1-control-table"].type == "table"
    assert "outcome-regressed" in prefect_client.read_flow_run(run_id).tags

    # The next cycle (another manifest version) starts from the same model: its control score is reused, not redone.
    scored = Path(record["steps"]["control_before"]["metrics"])
    mtime = scored.stat().st_mtime_ns
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()][:-1]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    again, _ = run_cycle(write_manifest(tmp_path / "grown.jsonl", rows), config)
    second = json.loads((ws / "cycles" / f"cycle-{again.cycle:04d}" / "cycle.json").read_text())
    assert again.cycle == 2 and second["steps"]["control_before"]["metrics"] == str(scored)
    assert scored.stat().st_mtime_ns == mtime and second["control"]["wer_before"] == control["wer_before"]


def test_a_bad_control_manifest_fails_the_cycle_before_anything_is_claimed(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    from asr_flywheel.errors import InputError

    bad = write_manifest(tmp_path / "control.jsonl", [{"audio_filepath": "gone.wav", "text": "good morning"}])
    config = write_tiny_cycle_config(
        tmp_path / "fw.toml", tmp_path / "ws", nemo_tiny_models["ctc"], cycle={"control_manifest": str(bad)}
    )
    with pytest.raises(InputError, match="line 1: audio_filepath: audio file not found"):
        run_cycle(tiny_dataset, config)
    assert not (tmp_path / "ws" / "cycles").exists()  # no cycle claimed, no training spent
