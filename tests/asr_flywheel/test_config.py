import pytest

from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.config_source import key_lines
from asr_flywheel.errors import InputError
from asr_flywheel.plugins.manager import check_hyperparameters


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


def test_errors_name_the_file_and_the_line_of_each_bad_key(tmp_path):
    p = tmp_path / "flywheel.toml"
    p.write_text(
        'workspace = "w"\n'
        "[gate]\n"
        "min_rows = 10\n"
        "finetune_abov = 0.4\n"
        "\n"
        "[split]\n"
        "val_fraction = 1.5   # out of range\n"
        "[bogus]\n"
        "x = 1\n"
    )
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert str(p) in exc.value.summary
    assert {(pr.field, pr.line) for pr in exc.value.problems} == {
        ("gate.finetune_abov", 4),
        ("split.val_fraction", 7),
        ("bogus", 8),
    }
    assert "line 4: gate.finetune_abov: unknown key" in str(exc.value)

    p.write_text("[gate]\nmin_rows = 10\n[split]\nseed = 1\nval_fraction = 1.5\n")
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert [(pr.field, pr.line) for pr in exc.value.problems] == [("split.val_fraction", 5)]


def test_a_toml_syntax_error_names_the_file_line_and_column(tmp_path):
    p = tmp_path / "flywheel.toml"
    p.write_text("[gate]\nmin_rows = 10\npriority = [drug]\n")
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert str(p) in exc.value.summary and "not valid TOML" in exc.value.summary
    (problem,) = exc.value.problems
    assert problem.line == 3 and "column" in problem.reason


def test_key_lines_cover_tables_dotted_and_quoted_keys():
    text = '# c\nworkspace = "w"\ngate.min_rows = 3\n[hyperparameters]\n"lr" = 1e-4\n  epochs=2\n'
    text += '[cycle]\nbackend = ""\n'
    lines = key_lines(text)
    assert lines["workspace"] == 2 and lines["gate.min_rows"] == 3 and lines["hyperparameters"] == 4
    assert lines["hyperparameters.lr"] == 5 and lines["hyperparameters.epochs"] == 6 and lines["cycle.backend"] == 8


def test_unknown_hyperparameter_in_the_file_is_refused_with_its_line(tmp_path):
    """The real NeMo trainer plugin decides what is known; nothing is trained or imported to find out."""
    p = tmp_path / "flywheel.toml"
    p.write_text("[gate]\nmin_rows = 10\n\n[hyperparameters]\nepochs = 2\nepochz = 3\n")
    cfg = load_config(p)
    with pytest.raises(InputError) as exc:
        check_hyperparameters(cfg, "nemo")
    assert str(p) in exc.value.summary
    assert [(pr.line, pr.field) for pr in exc.value.problems] == [(6, "hyperparameters.epochz")]
    assert "not a NeMo hyperparameter" in str(exc.value)


def test_flags_override_the_file_and_bad_flags_are_named_as_flags(tmp_path):
    p = tmp_path / "flywheel.toml"
    p.write_text("[hyperparameters]\nepochs = 2\nlr = 1e-4\n")
    cfg = load_config(p)
    assert check_hyperparameters(cfg, "nemo", {"epochs": 5}) == {"epochs": 5, "lr": 1e-4}
    assert check_hyperparameters(FlywheelConfig(), "hf", {}) == {}
    with pytest.raises(InputError) as exc:
        check_hyperparameters(cfg, "nemo", {"epochs": 0, "max_step": 1})
    assert [str(pr).split(" (")[0] for pr in exc.value.problems] == [
        "command line: --set max_step: not a NeMo hyperparameter"
    ]
    with pytest.raises(InputError, match=r"command line: --epochs: must be a positive number, got 0"):
        check_hyperparameters(cfg, "nemo", {"epochs": 0})
    with pytest.raises(InputError, match=r"line 3: hyperparameters.lr: must be a positive number"):
        check_hyperparameters(load_config(_write(p, "[hyperparameters]\nepochs = 2\nlr = -1.0\n")), "hf")
    with pytest.raises(InputError, match="unknown trainer backend 'acme'"):
        check_hyperparameters(cfg, "acme")


def _write(path, text):
    path.write_text(text)
    return path


SWEEP = """[decision]
keep_drop = -0.5
grow_drop = -0.6
[gate]
finetune_above = nan
harden_below = inf
min_rows = -4
[cycle]
batch_size = -1
shard_size = 0
[deploy]
concurrency = 0
protocol = "carrier-pigeon"
"""


def test_every_out_of_range_nan_or_unknown_choice_is_listed_at_once_with_its_line(tmp_path):
    p = tmp_path / "bad.toml"
    p.write_text(SWEEP)
    with pytest.raises(InputError) as exc:
        load_config(p)
    found = {pr.field: (pr.line, pr.reason) for pr in exc.value.problems}
    assert set(found) == {
        "decision.keep_drop",
        "decision.grow_drop",
        "gate.finetune_above",
        "gate.harden_below",
        "gate.min_rows",
        "cycle.batch_size",
        "cycle.shard_size",
        "deploy.concurrency",
        "deploy.protocol",
    }
    assert found["decision.keep_drop"] == (2, "must be > 0 and <= 1, got -0.5")
    assert found["gate.finetune_above"] == (5, "must be a finite number, got nan")
    assert "http, grpc" in found["deploy.protocol"][1]


@pytest.mark.parametrize(
    "body, field",
    [
        ("[decision]\nkeep_drop = 0.1\ngrow_drop = 0.2\n", "decision.grow_drop"),
        ("[decision]\nkeep_drop = 0.2\ngrow_drop = 0.2\n", "decision.grow_drop"),
        ("[gate]\nfinetune_above = 0.3\nharden_below = 0.3\n", "gate.harden_below"),
    ],
)
def test_thresholds_must_be_consistent(tmp_path, body, field):
    p = tmp_path / "c.toml"
    p.write_text(body)
    with pytest.raises(InputError) as exc:
        load_config(p)
    assert [pr.field for pr in exc.value.problems] == [field]


def test_every_numeric_key_has_a_range():
    import dataclasses

    from asr_flywheel.config import _RANGES, _SECTIONS, _hints

    numeric = {
        f"{name}.{f.name}"
        for name, cls in _SECTIONS.items()
        for f in dataclasses.fields(cls)
        if _hints(cls)[f.name] in (int, float)
    }
    assert numeric - set(_RANGES) == set()


def test_a_cli_override_is_range_checked_too():
    with pytest.raises(InputError) as exc:
        FlywheelConfig().replace("decision", grow_drop=0.5)
    assert [pr.field for pr in exc.value.problems] == ["decision.grow_drop"]
