"""The end of a KEEP cycle with a deployer: register → approval → deploy → served parity → champion, against a real
local Prefect server and a real tritonserver (nvidia-pytriton wheel, CPU) on loopback ports, with a tiny NeMo model.

KEEP is forced by replacing the decision table's KER rule (`force_keep`), because a tiny random model's KER moves by
noise; what these tests prove is what happens after KEEP, not the KER drop.
"""

from __future__ import annotations

import json

import pytest
from cycle_runs import artifacts_of, cycle_with_review, force_keep, run_cycle

from asr_flywheel.flows import steps
from asr_flywheel.flows.deploying import deploy_events
from asr_flywheel.registry import Registry
from helpers import free_ports, write_manifest, write_tiny_cycle_config


@pytest.fixture(autouse=True)
def _keep(monkeypatch):
    force_keep(monkeypatch)


pytestmark = pytest.mark.slow  # real servers and a fine-tune per cycle


@pytest.fixture(scope="module")
def triton(tmp_path_factory):
    from asr_flywheel.backends.triton import server

    repo = tmp_path_factory.mktemp("cycle-triton-repo")
    http_port, grpc_port = free_ports(2)
    info = server.start(repo, http_port=http_port, grpc_port=grpc_port)
    yield info
    server.stop(repo)


def seed_champion(workspace, model) -> str:
    """A workspace whose registry already has a champion (the tiny base model itself), as after a kept cycle."""
    reg = Registry(workspace / "registry")
    rec = reg.register(
        path=str(model), backend="nemo", base_model=str(model), parent=None, manifest_version="seed",
        manifest_family="seed", cycle=0, decision="KEEP",
    )  # fmt: skip
    reg.promote(rec.model_id, "seeded for the test")
    return rec.model_id


def test_keep_is_approved_deployed_parity_checked_and_only_then_champion(
    prefect_server, prefect_client, triton, nemo_tiny_models, tiny_dataset, tmp_path
):
    ws = tmp_path / "workspace"
    config = write_tiny_cycle_config(
        tmp_path / "flywheel.toml",
        ws,
        nemo_tiny_models["ctc"],
        epochs=1,
        cycle={"require_approval": True, "deployer": "triton"},
        deploy={"repo": triton.repo, "url": triton.http_url, "model_name": "cycle-ok", "concurrency": 4},
    )
    (result, run_id), champion_while_paused, _ = cycle_with_review(
        tiny_dataset, config, prefect_client, approve=True, reviewer="dr-lee", reason="drugs improved"
    )
    assert champion_while_paused is None  # approved but not yet deployed: no champion
    assert result.outcome == "KEEP" and result.champion_changed and result.deployed
    record = json.loads((ws / "cycles" / "cycle-0001" / "cycle.json").read_text())
    steps_done = record["steps"]
    assert [s for s in ("register", "review", "deploy", "promote") if s in steps_done] == [
        "register", "review", "deploy", "promote"
    ]  # fmt: skip
    deployed = steps_done["deploy"]
    assert deployed["ok"] and deployed["served"] and deployed["failed"] is None
    assert deployed["endpoint"].startswith(f"triton://{triton.http_url}/cycle-ok")
    assert deployed["parity"]["ok"] and deployed["parity"]["rows"] == steps_done["split"]["validation_rows"]
    assert Registry(ws / "registry").champion().model_id == result.model_id
    # the served model answers with the offline transcripts of the held-out rows
    offline = [json.loads(x)["hyp"] for x in (ws / "cycles" / "cycle-0001" / "after" / "offline_hyps.jsonl").open()]
    served = (ws / "cycles" / "cycle-0001" / "deploy" / "served" / "offline_hyps.jsonl").read_text().splitlines()
    assert [json.loads(x)["hyp"] for x in served] == offline
    arts = artifacts_of(prefect_client, run_id)
    assert "workspace-cycle-1-deploy" in arts and arts["workspace-cycle-1-parity"].type == "table"
    assert "deploy: version" in prefect_client.read_flow_run(run_id).state.message
    assert deploy_events(ws / "registry")[-1]["ok"] is True


def test_a_failed_deploy_leaves_the_previous_champion_and_says_so(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path
):
    """Nothing listens on the configured URL: the deploy fails, the champion that was there stays."""
    ws = tmp_path / "workspace"
    previous = seed_champion(ws, nemo_tiny_models["ctc"])
    config = write_tiny_cycle_config(
        tmp_path / "flywheel.toml",
        ws,
        nemo_tiny_models["ctc"],
        epochs=1,
        cycle={"deployer": "triton"},
        deploy={"repo": str(tmp_path / "repo"), "url": f"127.0.0.1:{free_ports(1)[0]}"},
    )
    result, run_id = run_cycle(tiny_dataset, config)
    assert result.decision == "KEEP" and result.outcome == "DEPLOY_FAILED" and not result.champion_changed
    reg = Registry(ws / "registry")
    assert reg.champion().model_id == previous and result.model_id != previous
    record = json.loads((ws / "cycles" / "cycle-0001" / "cycle.json").read_text())
    assert record["outcome"] == "DEPLOY_FAILED" and record["deploy"].startswith("deploy failed:")
    assert record["steps"]["deploy"]["failed"] == "deploy" and "promote" not in record["steps"]
    assert f"previous champion {previous} keeps serving" in record["note"]
    run = prefect_client.read_flow_run(run_id)
    assert "DEPLOY_FAILED" in run.state.message and previous in run.state.message
    assert "outcome-deploy_failed" in run.tags
    arts = artifacts_of(prefect_client, run_id)
    assert (
        "FAILED at deploy" in arts["workspace-cycle-1-deploy"].data
        and "DEPLOY_FAILED" in arts["workspace-cycle-1-outcome"].data
    )


def test_a_late_promotion_of_an_older_candidate_is_superseded(tmp_path, nemo_tiny_models):
    """A candidate approved after another cycle kept its own is not promoted over it (the promote step checks
    the champion is still the one the candidate started from, atomically under the registry lock)."""
    ws = tmp_path / "workspace"
    reg = Registry(ws / "registry")
    older = reg.register(
        path=str(nemo_tiny_models["ctc"]), backend="nemo", base_model="base", parent=None, manifest_version="v1",
        manifest_family="m", cycle=1, decision="KEEP",
    )  # fmt: skip
    newer = reg.register(**{**older.__dict__, "model_id": "cycle0002-newer", "cycle": 2})
    kept = steps.promote(registry_dir=reg.root, model_id=newer.model_id, reason="cycle 2 KEEP", started_from=None)
    late = steps.promote(registry_dir=reg.root, model_id=older.model_id, reason="late approval", started_from=None)
    assert kept.promoted and not late.promoted and "the champion is now cycle0002-newer" in late.reason
    assert reg.champion().model_id == newer.model_id
    assert [h["model_id"] for h in reg.champion_history()] == [newer.model_id]


def test_a_cycle_waiting_for_approval_neither_feeds_the_next_cycle_nor_overwrites_its_champion(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path
):
    """Cycle 1 waits for approval; meanwhile cycle 2 (another manifest version, no approval required) starts from
    the base model, not from the unapproved candidate, and is kept. The late approval of cycle 1's candidate is
    then SUPERSEDED: cycle 2's champion stays."""
    ws = tmp_path / "workspace"
    slow = write_tiny_cycle_config(
        tmp_path / "approval.toml", ws, nemo_tiny_models["ctc"], epochs=1,
        cycle={"require_approval": True},
    )  # fmt: skip
    fast = write_tiny_cycle_config(tmp_path / "fast.toml", ws, nemo_tiny_models["ctc"], epochs=1)
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()][:-1]  # another version of the manifest
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    other = write_manifest(tmp_path / "grown.jsonl", rows)
    second: dict = {}

    def run_second_cycle():
        second["result"], _ = run_cycle(other, fast)

    (late, run_id), _, _ = cycle_with_review(
        tiny_dataset,
        slow,
        prefect_client,
        approve=True,
        reviewer="dr-lee",
        reason="late",
        while_paused=run_second_cycle,
    )
    kept = second["result"]
    assert kept.cycle == 2 and kept.outcome == "KEEP" and kept.champion_changed
    assert json.loads((ws / "cycles" / "cycle-0002" / "cycle.json").read_text())["start"]["parent"] is None
    assert late.cycle == 1 and late.decision == "KEEP" and late.outcome == "SUPERSEDED" and not late.champion_changed
    assert Registry(ws / "registry").champion().model_id == kept.model_id
    assert f"the champion is now {kept.model_id}" in late.note
    assert "SUPERSEDED" in prefect_client.read_flow_run(run_id).state.message


def test_a_riva_build_that_serves_nothing_does_not_change_the_champion_by_default(
    prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path
):
    """The Riva deployer writes the build/deploy script (a real Riva server cannot run here): nothing serves the
    candidate and no parity can be checked, so without `[deploy] promote_unserved` the outcome is NOT_SERVED."""
    ws = tmp_path / "workspace"
    config = write_tiny_cycle_config(
        tmp_path / "flywheel.toml", ws, nemo_tiny_models["ctc"], epochs=1,
        cycle={"deployer": "riva"},
    )  # fmt: skip
    result, run_id = run_cycle(tiny_dataset, config)
    assert result.decision == "KEEP" and result.outcome == "NOT_SERVED" and not result.champion_changed
    assert Registry(ws / "registry").champion() is None
    record = json.loads((ws / "cycles" / "cycle-0001" / "cycle.json").read_text())
    assert record["steps"]["deploy"]["ok"] and not record["steps"]["deploy"]["served"]
    assert "promote_unserved" in record["note"] and "promote" not in record["steps"]
    assert (ws / "cycles" / "cycle-0001" / "deploy" / "riva_deploy.sh").is_file()
    assert "NOT_SERVED" in prefect_client.read_flow_run(run_id).state.message
