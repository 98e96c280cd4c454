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


def test_models_honours_the_config_given_after_the_verb(tmp_path, capsys):
    cfg = tmp_path / "fw.toml"
    cfg.write_text('[cycle]\nbase_model = "nvidia/parakeet-ctc-0.6b"\n')
    assert main(["models", "--config", str(cfg)]) == 0
    out = capsys.readouterr().out
    assert "nvidia/parakeet-ctc-0.6b *" in out and f"base_model in {cfg}" in out
    assert main(["models", "--json", "--config", str(cfg)]) == 0
    marked = [m["name"] for m in json.loads(capsys.readouterr().out) if m["configured_base"]]
    assert marked == ["nvidia/parakeet-ctc-0.6b"]
    cfg.write_text('[cycle]\nbase_modle = "x"\n')
    assert main(["models", "--config", str(cfg)]) == 2
    assert "line 2: cycle.base_modle: unknown key" in capsys.readouterr().err


def test_train_refuses_a_mistyped_hyperparameter_in_the_config_before_any_compute(
    nemo_tiny_models, tiny_split, tmp_path, capsys
):
    cfg = tmp_path / "fw.toml"
    cfg.write_text("[hyperparameters]\nepochs = 1\nepochz = 3\n")
    out = tmp_path / "model"
    argv = ["train", str(tiny_split), "--base", str(nemo_tiny_models["ctc"]), "--out", str(out), "--config", str(cfg)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"unknown NeMo hyperparameter(s) in {cfg}" in err
    assert "line 3: hyperparameters.epochz: not a NeMo hyperparameter" in err
    assert not out.exists()


def test_train_takes_hyperparameters_from_the_config_and_flags_override_them(
    nemo_tiny_models, tiny_split, tmp_path, capsys
):
    cfg = tmp_path / "fw.toml"
    cfg.write_text("[hyperparameters]\nmax_steps = 1\nseed = 7\nbatch_size = 8\nwarmup_steps = 1\nepochs = 3\n")
    out = tmp_path / "model"
    base = str(nemo_tiny_models["ctc"])
    argv = ["train", str(tiny_split), "--base", base, "--out", str(out), "--config", str(cfg), "--set", "seed=11"]
    assert main([*argv, "--epochs", "1"]) == 0, capsys.readouterr().err
    info = json.loads((out / "training_run_info.json").read_text())
    hp = info["hyperparameters"]
    assert (hp["max_steps"], hp["batch_size"], hp["warmup_steps"]) == (1, 8, 1)  # from the file
    assert (hp["seed"], hp["epochs"]) == (11, 1)  # the flags win
    assert info["global_steps"] == 1


def test_train_with_a_missing_nemo_file_says_the_file_is_not_found(tmp_path, capsys):
    missing = tmp_path / "missing.nemo"
    assert main(["train", str(tmp_path), "--base", str(missing), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert f"model file not found: {missing}" in err and "Traceback" not in err


def test_eval_with_an_unknown_endpoint_scheme_names_the_scheme_and_the_known_forms(clinical_manifest, tmp_path, capsys):
    code = main(["eval", str(clinical_manifest), "--endpoint", "http://localhost:8000/x", "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "scheme http://" in err and "triton://HOST:PORT/NAME" in err
