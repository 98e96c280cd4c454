"""The cycle's rules that live in the core: where a cycle starts, when a retry may change it, when to deploy and
promote, which version to cycle, and which records form the history."""

from __future__ import annotations

import pytest

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import StartingPoint, Workspace, deploy_target, require_writable_dir, version_to_cycle
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.manifest import append_rows
from asr_flywheel.registry import Registry, promotion_due


def register(reg: Registry, cycle: int, backend: str = "nemo"):
    return reg.register(
        path=f"/m/{cycle}.nemo",
        backend=backend,
        base_model="base",
        parent=None,
        manifest_version="v",
        manifest_family="f",
        cycle=cycle,
    )


def test_a_cycle_starts_from_the_champion_with_its_backend_else_from_the_base(tmp_path):
    reg = Registry(tmp_path)
    assert reg.starting_point("nvidia/parakeet-tdt-0.6b-v2", "nemo") == StartingPoint(
        "nvidia/parakeet-tdt-0.6b-v2", "nemo", None
    )
    candidate = register(reg, 1, backend="hf")
    assert reg.starting_point("base", None).model == "base"  # a candidate is not the champion
    reg.promote(candidate.model_id, "KEEP")
    assert reg.starting_point("base", "nemo") == StartingPoint("/m/1.nemo", "hf", candidate.model_id)


def test_a_retry_before_training_may_change_the_start_but_not_after(tmp_path):
    cycle = Workspace(tmp_path).new_cycle()
    typo, fixed = StartingPoint("typo.nemo", None, None), StartingPoint("good.nemo", None, None)
    assert cycle.starting_point(typo) == (typo, False)
    cycle.finish_step("baseline", {"files": []})
    start, discarded = cycle.starting_point(fixed)
    assert start == fixed and discarded and cycle.step("baseline") is None  # scored the wrong model: redone
    assert cycle.read_record()["discarded"][0]["start"]["model"] == "typo.nemo"
    cycle.finish_step("train", {"files": []})
    assert cycle.starting_point(StartingPoint("other.nemo", None, None)) == (fixed, False)  # training finished


def test_deploying_follows_the_configuration_unless_the_run_says_otherwise():
    assert deploy_target("triton", None) == "triton"
    assert deploy_target("triton", False) == ""
    assert deploy_target("", None) == ""
    with pytest.raises(FlywheelError, match="no deployer is configured"):
        deploy_target("", True)


@pytest.mark.parametrize(
    ("keep", "required", "approved", "due"),
    [
        (True, False, None, True),
        (True, True, None, False),
        (True, True, False, False),
        (True, True, True, True),
        (False, False, None, False),
        (False, True, True, False),
    ],
)
def test_a_candidate_is_promoted_on_keep_and_only_after_a_required_approval(keep, required, approved, due):
    assert promotion_due(keep, approval_required=required, approved=approved) is due


def test_a_rejection_is_recorded_and_leaves_the_champion(tmp_path):
    reg = Registry(tmp_path)
    old = register(reg, 1)
    reg.promote(old.model_id, "KEEP")
    new = register(reg, 2)
    reg.review(new.model_id, approved=False, reviewer="dr-x", reason="worse on heparin")
    assert reg.champion().model_id == old.model_id
    assert reg.get(new.model_id).review["reviewer"] == "dr-x"


def test_the_announced_version_is_cycled_while_the_file_still_holds_it(clinical_manifest):
    cfg = FlywheelConfig()
    v1, warning = version_to_cycle(clinical_manifest, cfg)
    assert warning is None and v1.rows == 8
    row = fio.read_jsonl(clinical_manifest)[0]
    append_rows(clinical_manifest, [{**row, "text": "give cefazolin now", "audio_filepath": "audio/row1.wav"}])
    assert version_to_cycle(clinical_manifest, cfg, content_hash=v1.version, rows=8) == (v1, None)
    with pytest.raises(InputError, match="duplicate"):  # the current content is invalid; v1 is gone: say so
        version_to_cycle(clinical_manifest, cfg, content_hash="0" * 64, rows=8)


def test_a_forced_claim_gives_a_completed_version_a_new_cycle(tmp_path):
    ws = Workspace(tmp_path)
    first = ws.claim_version("v1", "m.jsonl")
    assert ws.claim_version("v1", "m.jsonl", again=True).status == "resume"  # not finished: resume, not a new one
    first.cycle.update_record(status="complete")
    again = ws.claim_version("v1", "m.jsonl", again=True)
    assert (again.status, again.cycle.number, again.record["earlier_cycles"]) == ("new", 2, [1])
    assert ws.claim_version("v1", "m.jsonl").status == "resume"


def test_history_never_includes_the_cycle_itself(tmp_path):
    ws = Workspace(tmp_path)
    a, b = ws.new_cycle(), ws.new_cycle()
    fio.write_json(a.path / "gate.json", {"cycle": 1})
    fio.write_json(b.path / "gate.json", {"cycle": 2})
    assert [h["cycle"] for h in ws.history("gate.json")] == [1, 2]
    assert [h["cycle"] for h in ws.history("gate.json", exclude=b)] == [1]


def test_output_locations_are_checked_before_any_work(tmp_path):
    f = tmp_path / "file.txt"
    f.write_text("x")
    with pytest.raises(InputError, match="is a file"):
        require_writable_dir(f)
    with pytest.raises(InputError, match="is not writable"):
        require_writable_dir(f / "sub")
    assert require_writable_dir(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()  # checking creates nothing
