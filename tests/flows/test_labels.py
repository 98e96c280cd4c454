"""Many flywheels on one Prefect server: runs and artifact keys carry the flywheel's name, so two workspaces never
overwrite each other's artifacts (the flows' own naming, checked end to end in test_cycle_flow.py)."""

from pathlib import Path

from asr_flywheel.flows.artifacts import CycleLabel, flywheel_name


def test_two_workspaces_on_one_server_get_their_own_run_names_and_keys():
    a = CycleLabel.of("", Path("/srv/flywheels/cardiology"), 1)
    b = CycleLabel.of("", Path("/srv/flywheels/oncology"), 1)
    assert (a.run_name, b.run_name) == ("cardiology-cycle-1", "oncology-cycle-1")
    assert a.key("gate") != b.key("gate") and a.key("gate") == "cardiology-cycle-1-gate"
    assert a.tags() == ["cardiology-cycle-1", "flywheel-cardiology"]


def test_the_configured_name_wins_and_every_name_becomes_a_valid_artifact_key():
    assert CycleLabel.of("Cardiology ICU", Path("/x/workspace"), 3).key("heldout", "leaderboard") == (
        "cardiology-icu-cycle-3-heldout-leaderboard"
    )
    assert flywheel_name("", Path("/data/Radiology_2026")) == "radiology-2026"
    assert flywheel_name("***", Path("/x/y")) == "flywheel"  # nothing key-safe left: a fixed fallback
