import json

from asr_flywheel.flows.cli import main


def test_models_lists_the_catalogue_with_viability(capsys):
    assert main(["models", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    assert models["nvidia/parakeet-tdt-0.6b-v2"]["sft"] == "recommended"
    assert models["nvidia/parakeet-tdt-0.6b-v2"]["decoder"] == "tdt"
    assert models["nvidia/nemotron-speech-streaming-en-0.6b"]["sft"] == "refused"
    assert models["google/medasr"]["backend"] == "hf" and models["google/medasr"]["gated"] is True
    assert main(["models"]) == 0
    assert "refused" in capsys.readouterr().out


def test_train_refuses_streaming_base_before_any_compute(tmp_path, capsys):
    # no split directory exists: the refusal must come first
    code = main(
        [
            "train",
            str(tmp_path / "nope"),
            "--base",
            "nvidia/nemotron-speech-streaming-en-0.6b",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "all-UNK" in err and "Suggested base: nvidia/parakeet-tdt-0.6b-v2" in err
    assert not (tmp_path / "out").exists()


def test_train_refuses_adapter_sft_of_tdt(tmp_path, capsys):
    code = main(
        [
            "train",
            str(tmp_path),
            "--base",
            "nvidia/parakeet-tdt-0.6b-v2",
            "--method",
            "adapter",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 2
    assert "NaN tensors" in capsys.readouterr().err


def test_train_with_unknown_base_explains_what_is_accepted(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--base", "acme/nothing", "--out", str(tmp_path / "o")]) == 2
    assert "not in the catalogue" in capsys.readouterr().err
