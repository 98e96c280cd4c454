import pytest

from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.errors import InputError


def test_defaults_are_the_spec_values():
    c = FlywheelConfig()
    assert (c.gate.min_rows, c.gate.min_priority_rows, c.gate.finetune_above, c.gate.harden_below) == (100, 5, 0.3, 0.1)
    assert (c.gate.pronunciation_gap, c.gate.good_source_max, c.gate.priority) == (0.2, 0.1, ("drug",))
    assert (c.split.val_fraction, c.split.seed) == (0.2, 42)
    assert (c.decision.keep_drop, c.decision.grow_drop, c.decision.overfit_rise) == (0.2, 0.05, 0.05)
    assert c.decision_targets == ("drug",)


def test_file_values_and_every_bad_key_reported(tmp_path):
    p = tmp_path / "flywheel.toml"
    p.write_text('[gate]\npriority = ["drug", "procedure"]\nfinetune_above = 0.4\n[split]\nseed = 7\n')
    c = load_config(p)
    assert c.gate.priority == ("drug", "procedure") and c.gate.finetune_above == 0.4 and c.split.seed == 7
    p.write_text('[gate]\nfinetune_abov = 0.4\nmin_rows = "100"\n[bogus]\nx = 1\n')
    with pytest.raises(InputError) as exc:
        load_config(p)
    fields = {pr.field for pr in exc.value.problems}
    assert fields == {"gate.finetune_abov", "gate.min_rows", "bogus"}


def test_range_checks_and_cli_overrides(tmp_path):
    p = tmp_path / "c.toml"
    p.write_text('[split]\nval_fraction = 1.5\n[gate]\npriority = ["device"]\n')
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert {pr.field for pr in exc.value.problems} == {"split.val_fraction", "gate.priority"}
    c = FlywheelConfig().replace("split", seed=3, val_fraction=None)
    assert c.split.seed == 3 and c.split.val_fraction == 0.2
    with pytest.raises(InputError):
        FlywheelConfig().replace("split", seed="x")


def test_env_var_selects_the_file(tmp_path, monkeypatch):
    p = tmp_path / "c.toml"
    p.write_text('workspace = "/data/fw"\n')
    monkeypatch.setenv("FLYWHEEL_CONFIG", str(p))
    assert load_config().workspace == "/data/fw"
