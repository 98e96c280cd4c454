"""Real NeMo models (tiny, built from config) trained on real espeak-ng audio, on CPU.

NeMo's TDT loss runs only on CUDA, so CPU tests train the same model class with the RNNT loss and a CTC model;
TDT training is checked on a GPU when one is available (tests marked `gpu`).
"""

import json
import shlex

import pytest

from asr_flywheel.backends.nemo.trainer import TrainingError, resolve_precision
from asr_flywheel.errors import InputError, RefusedError
from asr_flywheel.flows import steps
from asr_flywheel.plugins.contracts import Decoder

FAST = {"epochs": 1, "batch_size": 8, "warmup_steps": 1}  # default precision: bf16-mixed → fp32 on CPU


@pytest.fixture(scope="module")
def split_dir(tiny_split):
    return tiny_split


@pytest.fixture(scope="module")
def trained_ctc(nemo_tiny_models, split_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("ctc-sft")
    return steps.train(split_dir, str(nemo_tiny_models["ctc"]), out, hyperparameters=FAST)


def test_ctc_sft_writes_model_and_run_info(trained_ctc, split_dir):
    assert trained_ctc.model_path.name == "adapted_model.nemo" and trained_ctc.model_path.stat().st_size > 0
    info = json.loads(trained_ctc.run_info_path.read_text())
    assert info["architecture"]["decoder"] == "ctc" and info["architecture"]["class"] == "EncDecCTCModelBPE"
    assert info["hyperparameters"]["lr"] == 3e-4 and info["hyperparameters"]["gradient_clip_val"] == 1.0
    assert info["dataset"]["train"]["rows"] + info["dataset"]["validation"]["rows"] == 32
    assert "val_wer" in info["metrics"] and "train_loss" in info["metrics"]
    assert {"nemo", "torch", "lightning", "flywheel"} <= set(info["versions"])
    assert not (trained_ctc.model_path.parent / ".checkpoints").exists()  # cleaned after a complete save
    argv = shlex.split(trained_ctc.container_command)
    assert "nvcr.io/nvidia/nemo:25.11.01" in argv


def test_trained_model_restores_transcribes_and_scores(trained_ctc, tiny_dataset, tmp_path):
    # restore_from through the same loader users hit, then batched transcription and scoring
    res = steps.evaluate(tiny_dataset, str(trained_ctc.model_path), tmp_path / "eval", batch_size=8)
    hyps = [json.loads(x) for x in (tmp_path / "eval" / "offline_hyps.jsonl").read_text().splitlines()]
    assert len(hyps) == 32 and all(isinstance(h["hyp"], str) for h in hyps)
    assert res.report.metrics["n"] == 32 and 0.0 <= res.report.metrics["ker"] <= 1.0
    assert (tmp_path / "eval" / "leaderboard_cycle0.md").exists()


def test_rnnt_model_trains_with_the_same_code_path(nemo_tiny_models, split_dir, tmp_path):
    res = steps.train(split_dir, str(nemo_tiny_models["rnnt"]), tmp_path, hyperparameters={**FAST, "max_steps": 2})
    info = json.loads(res.run_info_path.read_text())
    assert info["architecture"]["decoder"] == "rnnt" and info["global_steps"] == 2


def test_tdt_training_on_cpu_fails_clearly_before_fitting(nemo_tiny_models, split_dir, tmp_path):
    with pytest.raises(TrainingError, match="TDT loss runs only on CUDA"):
        steps.train(split_dir, str(nemo_tiny_models["tdt"]), tmp_path, hyperparameters=FAST)
    assert (tmp_path / "container_command.sh").exists()  # the GPU route is still handed over
    assert not (tmp_path / "adapted_model.nemo").exists()


def test_tdt_model_transcribes_on_cpu(nemo_tiny_models, tiny_dataset, tmp_path):
    model = steps.load_model(str(nemo_tiny_models["tdt"]))
    assert model.decoder is Decoder.TDT
    assert len(model.transcribe([str(tiny_dataset.parent / "audio" / "r00.wav")], batch_size=1)) == 1


def test_adapter_requests_for_tdt_are_refused_before_compute(nemo_tiny_models, split_dir, tmp_path):
    with pytest.raises(RefusedError, match="NaN tensors"):
        steps.train(split_dir, str(nemo_tiny_models["tdt"]), tmp_path, method="adapter")
    assert list(tmp_path.iterdir()) == []


def test_precision_rules():
    with pytest.raises(RefusedError, match="NaN losses"):
        resolve_precision("16-mixed", Decoder.TDT, on_gpu=True, bf16_ok=True)
    assert resolve_precision("16-mixed", Decoder.CTC, on_gpu=True, bf16_ok=True) == ("16-mixed", None)
    p, note = resolve_precision("bf16-mixed", Decoder.TDT, on_gpu=True, bf16_ok=False)
    assert p == "32" and "not supported" in note
    assert resolve_precision("bf16-mixed", Decoder.TDT, on_gpu=True, bf16_ok=True) == ("bf16-mixed", None)
    p, note = resolve_precision("bf16-mixed", Decoder.CTC, on_gpu=False, bf16_ok=False)
    assert p == "32" and "no GPU" in note


def test_unknown_hyperparameters_are_rejected(nemo_tiny_models, split_dir, tmp_path):
    with pytest.raises(InputError, match="unknown NeMo hyperparameter"):
        steps.train(split_dir, str(nemo_tiny_models["ctc"]), tmp_path, hyperparameters={"learning_rate": 1e-3})


def test_missing_audio_is_refused_before_training(nemo_tiny_models, split_dir, tmp_path):
    bad = tmp_path / "split"
    bad.mkdir()
    rows = split_dir.joinpath("train.jsonl").read_text().splitlines()
    rows.append(json.dumps({"audio_filepath": str(tmp_path / "gone.wav"), "text": "x"}))
    (bad / "train.jsonl").write_text("\n".join(rows) + "\n")
    (bad / "validation.jsonl").write_text(split_dir.joinpath("validation.jsonl").read_text())
    with pytest.raises(InputError) as exc:
        steps.train(bad, str(nemo_tiny_models["ctc"]), tmp_path / "out", hyperparameters=FAST)
    assert f"line {len(rows)}: audio_filepath: audio file not found" in exc.value.render()
    assert not (tmp_path / "out").exists()


def test_catalogue_name_that_cannot_be_downloaded_fails_clearly(tmp_path, tiny_dataset, monkeypatch):
    """The model hub cannot be reached from these machines (HF_HUB_OFFLINE makes that immediate)."""
    from asr_flywheel.backends.nemo._runtime import ModelUnavailable

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailable, match=r"pass the local \.nemo file"):
        steps.load_model("nvidia/parakeet-ctc-0.6b", "nemo")
