"""`flywheel base-model`: bad flags are refused with exit 2, naming every one, before any synthesis or training."""

from asr_flywheel.flows.cli import main


def test_base_model_rejects_every_bad_flag_with_exit_2(tmp_path, capsys):
    code = main(["base-model", "--workspace", str(tmp_path), "--steps", "0", "--workers", "0", "--seed", "-1"])
    err = capsys.readouterr().err
    assert code == 2
    assert "--steps must be positive" in err and "--workers must be at least 1" in err and "--seed" in err
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()
