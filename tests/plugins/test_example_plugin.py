"""The example third-party plugin (tests/example_plugin, installed by `make setup` with pip -e) is discovered through
its entry point and its base model is usable from the CLI like a built-in one."""

import json
from importlib.metadata import entry_points

import pytest

from asr_flywheel.flows.cli import main


def test_the_example_package_is_installed_with_an_entry_point():
    eps = {ep.name: ep.value for ep in entry_points(group="asr_flywheel")}
    assert eps["example"] == "flywheel_example_plugin"
    assert {"catalogue", "nemo", "hf", "espeak"} <= set(eps)  # built-ins use the very same group


def test_the_plugin_model_is_listed_and_usable_from_the_cli(
    nemo_tiny_models, tiny_dataset, tiny_split, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("FLYWHEEL_EXAMPLE_MODEL", str(nemo_tiny_models["ctc"]))
    assert main(["models", "--json"]) == 0
    entry = next(m for m in json.loads(capsys.readouterr().out) if m["name"] == "example/tiny-ctc")
    assert entry["plugin"] == "example" and entry["backend"] == "nemo" and entry["decoder"] == "ctc"

    assert main(["eval", str(tiny_dataset), "--model", "example/tiny-ctc", "--out", str(tmp_path / "eval")]) == 0
    assert json.loads((tmp_path / "eval" / "metrics.json").read_text())["model"] == "example/tiny-ctc"

    assert (
        main(
            [
                "train",
                str(tiny_split),
                "--base",
                "example/tiny-ctc",
                "--out",
                str(tmp_path / "model"),
                "--epochs",
                "1",
                "--set",
                "max_steps=1",
            ]
        )
        == 0
    )
    info = json.loads((tmp_path / "model" / "training_run_info.json").read_text())
    assert info["base_model"] == "example/tiny-ctc" and info["weights"] == str(nemo_tiny_models["ctc"])


VENDOR = "example/vendor-transcripts"


def vendor_copy(tiny_dataset, tmp_path, wrong_every: int = 4):
    """The tiny dataset with a vendor transcript next to each clip: the reference, except every `wrong_every`-th
    row, whose term the vendor misheard."""
    import shutil

    root = tmp_path / "vendor"
    shutil.copytree(tiny_dataset.parent, root)
    rows = [json.loads(x) for x in (root / tiny_dataset.name).read_text().splitlines()]
    misses = 0
    for i, row in enumerate(rows):
        text = row["text"]
        if i % wrong_every == 0:
            text = text.replace(row["term"], "something else")
            misses += 1
        (root / row["audio_filepath"]).with_suffix(".vendor.txt").write_text(text + "\n")
    return root / tiny_dataset.name, misses, len(rows)


def test_an_evaluate_only_plugin_model_scores_and_is_refused_training_before_any_compute(
    tiny_dataset, tiny_split, tmp_path, capsys
):
    manifest, misses, n = vendor_copy(tiny_dataset, tmp_path)
    assert main(["models", "--json"]) == 0
    entry = next(m for m in json.loads(capsys.readouterr().out) if m["name"] == VENDOR)
    assert entry["sft"] == "refused" and entry["decoder"] == "other" and entry["plugin"] == "example"

    assert main(["eval", str(manifest), "--model", VENDOR, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    assert metrics["model"] == VENDOR and metrics["n"] == n
    assert metrics["ker"] == pytest.approx(misses / n)  # the plugin's own transcripts, scored by the same rules

    # the gate knows: the rules would fine-tune (drug KER above 0.3 with the lowered row minimum), the model cannot
    capsys.readouterr()
    cfg = tmp_path / "gate.toml"
    cfg.write_text("[gate]\nmin_rows = 20\nfinetune_above = 0.2\n")
    assert main(["--config", str(cfg), "gate", str(tmp_path / "eval" / "metrics.json"), "--out", str(tmp_path)]) == 0
    gate = json.loads((tmp_path / "gate.json").read_text())
    assert gate["outcome"] == "EVALUATE_ONLY" and gate["proceed"] is False
    assert "vendor's speech service" in gate["reason"] and "The rules alone: Fine-tune" in gate["reason"]

    # train and cycle refuse before any compute, with the catalogue's reason and suggestion (no trainer exists)
    capsys.readouterr()
    assert main(["train", str(tiny_split), "--base", VENDOR, "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert "refusing to fine-tune example/vendor-transcripts: it is evaluate-only" in err
    assert "Suggested base: nvidia/parakeet-tdt-0.6b-v2" in err and "unknown trainer" not in err
    assert not (tmp_path / "model").exists()

    ws = tmp_path / "ws"
    assert main(["cycle", str(manifest), "--base", VENDOR, "--workspace", str(ws)]) == 2
    assert "it is evaluate-only" in capsys.readouterr().err
    assert not (ws / "cycles").exists() and not (ws / "claims").exists()  # nothing claimed, nothing scored


def test_a_missing_vendor_transcript_is_named_not_scored_as_silence(tiny_dataset, tmp_path, capsys):
    manifest, _, _ = vendor_copy(tiny_dataset, tmp_path)
    gone = sorted((manifest.parent / "audio").glob("*.vendor.txt"))[3]
    gone.unlink()
    assert main(["eval", str(manifest), "--model", VENDOR, "--out", str(tmp_path / "eval")]) == 2
    err = capsys.readouterr().err
    assert "no vendor transcript for 1 of" in err and gone.name in err
    assert not (tmp_path / "eval" / "metrics.json").exists()
