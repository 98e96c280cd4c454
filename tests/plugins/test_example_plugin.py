"""The example third-party plugin (tests/example_plugin, installed by `make setup` with pip -e) is discovered through
its entry point and its base model is usable from the CLI like a built-in one."""

import json
from importlib.metadata import entry_points

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
