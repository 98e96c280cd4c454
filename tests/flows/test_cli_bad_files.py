"""Damaged files are named, never a bare library error: a .nemo that is not an archive, a .nemo whose YAML is
broken, a truncated registry or claim record; and training flags are checked before any model loads."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main


def broken_yaml_nemo(path: Path) -> Path:
    data = b"target: nemo.collections.asr.models.EncDecCTCModelBPE\ndecoder: [unclosed\n"
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo("./model_config.yaml")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    return path


def run(argv, capsys) -> tuple[int, str]:
    code = main(argv)
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_eval_of_random_bytes_named_nemo_names_the_file(clinical_manifest, tmp_path, capsys):
    fake = tmp_path / "fake.nemo"
    fake.write_bytes(bytes(range(256)) * 20)
    code, err = run(["eval", str(clinical_manifest), "--model", str(fake), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and f"{fake} is not a readable .nemo archive" in err and "gzip" not in err


def test_deploy_of_a_nemo_with_broken_yaml_names_the_file_and_the_line(tmp_path, capsys):
    model = broken_yaml_nemo(tmp_path / "broken.nemo")
    code, err = run(["deploy", str(model), "--to", "riva", "--out", str(tmp_path / "riva")], capsys)
    assert code == 2 and f"{model}: its model_config.yaml is not valid YAML (line 3)" in err
    assert "ParserError" not in err and not (tmp_path / "riva" / "riva_deploy.sh").exists()


def test_training_flags_are_checked_before_the_model_loads(nemo_tiny_models, tiny_split, tmp_path, capsys):
    out = tmp_path / "model"
    argv = ["train", str(tiny_split), "--base", str(nemo_tiny_models["ctc"]), "--out", str(out)]
    code, err = run([*argv, "--lr", "nan", "--precision", "fp99"], capsys)
    assert code == 2 and "lr: must be a finite number, got nan" in err and "precision: must be one of" in err
    assert not (out / "container_command.sh").exists() and not list(out.glob("*")) if out.exists() else True


@pytest.mark.parametrize("record", ["registry/registry.json", "claims/{version}.json"])
def test_a_truncated_record_names_its_file(record, prefect_server, clinical_manifest, tmp_path, capsys):
    from asr_flywheel.validation import load_manifest

    ws = tmp_path / "ws"
    path = ws / record.format(version=load_manifest(clinical_manifest).version)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"models": [], "champion": None})[:17])  # cut mid-write by something else
    config = tmp_path / "fw.toml"
    config.write_text(f'workspace = "{ws}"\n[gate]\nmin_rows = 1\nmin_priority_rows = 1\n')
    code, err = run(["--config", str(config), "cycle", str(clinical_manifest), "--base", "example/tiny-ctc"], capsys)
    if record.startswith("registry"):  # read by the flow's own input checks, before Prefect starts
        assert code == 2 and f"{path} is not valid JSON" in err
    else:  # read when the version is claimed: the flow fails with the file's name
        assert code != 0 and f"{path} is not valid JSON" in err
