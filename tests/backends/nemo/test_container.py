import json
import shlex

import pytest

from asr_flywheel.backends.nemo.container import NEMO_IMAGE, STOCK_SCRIPT, container_command, to_container
from asr_flywheel.backends.nemo.trainer import DEFAULTS
from asr_flywheel.errors import InputError


def manifests(tmp_path):
    audio = tmp_path / "data" / "audio"
    audio.mkdir(parents=True)
    rows = [{"audio_filepath": str(audio / f"{i}.wav"), "text": "x", "duration": 1.0} for i in range(3)]
    for r in rows:
        open(r["audio_filepath"], "wb").close()
    train = tmp_path / "split" / "train.jsonl"
    val = tmp_path / "split" / "validation.jsonl"
    train.parent.mkdir()
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    val.write_text(json.dumps(rows[2]) + "\n")
    return train, val


def test_paths_are_rewritten_into_a_copy_under_workspace(tmp_path):
    train, val = manifests(tmp_path)
    before = train.read_text()
    cmd = container_command(
        base="nvidia/parakeet-tdt-0.6b-v2",
        base_is_file=False,
        train_manifest=train,
        validation_manifest=val,
        out_dir=tmp_path / "model",
        hp=DEFAULTS,
    )
    argv = shlex.split(cmd)
    assert argv[:2] == ["docker", "run"] and NEMO_IMAGE in argv and STOCK_SCRIPT in argv
    assert f"{tmp_path}:/workspace" in argv
    assert "+init_from_pretrained_model=nvidia/parakeet-tdt-0.6b-v2" in argv
    assert "trainer.precision=bf16-mixed" in argv and "model.optim.lr=0.0003" in argv
    copy = tmp_path / "model" / "container" / "train.jsonl"
    assert "model.train_ds.manifest_filepath=/workspace/model/container/train.jsonl" in argv
    rows = [json.loads(x) for x in copy.read_text().splitlines()]
    assert [r["audio_filepath"] for r in rows] == ["/workspace/data/audio/0.wav", "/workspace/data/audio/1.wav"]
    assert train.read_text() == before  # never rewritten in place


def test_local_base_model_is_mounted_and_referenced(tmp_path):
    train, val = manifests(tmp_path)
    base = tmp_path / "models" / "base.nemo"
    base.parent.mkdir()
    base.write_bytes(b"x")
    cmd = container_command(
        base=str(base),
        base_is_file=True,
        train_manifest=train,
        validation_manifest=val,
        out_dir=tmp_path / "model",
        hp=DEFAULTS,
    )
    assert "init_from_nemo_model=/workspace/models/base.nemo" in shlex.split(cmd)
    assert "HF_TOKEN" not in cmd


def test_paths_outside_the_mount_are_rejected(tmp_path):
    with pytest.raises(InputError, match="outside the mounted directory"):
        to_container("/etc/passwd", tmp_path)
