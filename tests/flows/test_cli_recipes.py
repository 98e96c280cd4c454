"""`flywheel base-model`: bad flags are refused with exit 2, naming every one, before any synthesis or training."""

import json

import pytest

from asr_flywheel.flows.cli import main


def test_base_model_rejects_every_bad_flag_with_exit_2(tmp_path, capsys):
    code = main(
        ["base-model", "--workspace", str(tmp_path), "--steps", "0", "--workers", "0", "--seed", "-1", "--lr", "0"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "--steps must be positive" in err and "--workers must be at least 1" in err and "--seed" in err
    assert "--lr must be positive" in err
    assert not (tmp_path / "models").exists() and not (tmp_path / "data").exists()


def test_base_model_refuses_an_unwritable_workspace_before_synthesis(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    assert main(["base-model", "--workspace", str(blocker / "ws")]) == 2
    err = capsys.readouterr().err
    assert "--workspace" in err and "Traceback" not in err
    assert not (tmp_path / "file").is_dir()


def test_base_model_refuses_an_unknown_recipe_naming_the_installed_ones(tmp_path, capsys):
    assert main(["base-model", "--workspace", str(tmp_path), "--recipe", "nope"]) == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "nemo-general-english" in err and "Traceback" not in err


def test_base_model_refuses_an_export_path_that_is_a_file_before_synthesis(tmp_path, capsys):
    target = tmp_path / "export"
    target.write_text("a file")
    assert main(["base-model", "--workspace", str(tmp_path / "ws"), "--export", str(target)]) == 2
    assert "--export" in capsys.readouterr().err and not (tmp_path / "ws" / "data").exists()


def test_an_unknown_corpus_and_a_missing_parent_base_exit_2_naming_both(tmp_path, capsys):
    code = main(["base-model", "--workspace", str(tmp_path), "--corpus", "klingon", "--init-from", "bases/nowhere"])
    err = capsys.readouterr().err
    assert code == 2 and "klingon" in err and "bases/nowhere" in err
    assert not (tmp_path / "data").exists()  # nothing synthesised


@pytest.mark.slow
def test_base_model_json_prints_only_the_record_on_stdout_with_every_flag_applied(tmp_path, capsys):
    """A real (cut-down) recipe run through the CLI: realistic corpus, continued from the espeak base, one step."""
    code = main(
        ["base-model", "--workspace", str(tmp_path), "--init-from", "bases/espeak", "--steps", "1",
         "--train-sentences", "8", "--lr", "2e-3", "--threads", "2", "--json"]
    )  # fmt: skip
    out, err = capsys.readouterr()
    record = json.loads(out)  # nothing but the record: progress went to stderr
    assert code == 0 and "synthesising" in err
    assert {k: record["recipe"][k] for k in ("lr", "threads", "max_steps", "n_train", "corpus", "init_from")} == {
        "lr": 2e-3, "threads": 2, "max_steps": 1, "n_train": 8, "corpus": "realistic", "init_from": "bases/espeak"
    }  # fmt: skip
    assert record["init_from"]["folder"] == "examples/bases/espeak"
