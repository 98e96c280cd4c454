"""Real NeMo models (tiny, built from config) trained on real espeak-ng audio, on CPU.

NeMo's TDT loss runs only on CUDA, so CPU tests train the same model class with the RNNT loss and a CTC model;
TDT training is checked on a GPU when one is available (tests marked `gpu`).
"""

import json
import shlex
import shutil

import pytest

from asr_flywheel.backends.nemo.trainer import TrainingError, resolve_precision
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError, RefusedError
from asr_flywheel.flows import steps
from asr_flywheel.plugins.contracts import Decoder

FAST = {"epochs": 1, "batch_size": 8, "warmup_steps": 1}  # default precision: bf16-mixed → fp32 on CPU


@pytest.fixture(scope="module")
def split_dir(tiny_split):
    return tiny_split


GENERAL = ["the weather is nice today", "we walked to the market", "please close the window"]


@pytest.fixture(scope="module")
def replay_split(split_dir, synth, tmp_path_factory):
    """A copy of the split plus general-English rows that `[train] replay_manifest` mixes in at train time."""
    root = tmp_path_factory.mktemp("replay")
    rows = [{"audio_filepath": str(synth(t, root / "audio" / f"g{i}.wav")), "text": t} for i, t in enumerate(GENERAL)]
    general = root / "general.jsonl"
    general.write_text("".join(json.dumps(r) + "\n" for r in rows))
    split = root / "split"
    shutil.copytree(split_dir, split)
    return split, general


@pytest.fixture(scope="module")
def trained_ctc(nemo_tiny_models, replay_split, tmp_path_factory):
    """Trained through `steps.train` (what `flywheel train` and the cycle run), replay configured as users do."""
    split, general = replay_split
    cfg = FlywheelConfig().replace("train", replay_manifest=str(general), replay_fraction=0.1, replay_seed=5)
    out = tmp_path_factory.mktemp("ctc-sft")
    return steps.train(split, str(nemo_tiny_models["ctc"]), out, hyperparameters=FAST, config=cfg)


def test_ctc_sft_writes_model_and_run_info(trained_ctc):
    assert trained_ctc.model_path.name == "adapted_model.nemo" and trained_ctc.model_path.stat().st_size > 0
    info = json.loads(trained_ctc.run_info_path.read_text())
    assert info["architecture"]["decoder"] == "ctc" and info["architecture"]["class"] == "EncDecCTCModelBPE"
    assert info["hyperparameters"]["lr"] == 3e-4 and info["hyperparameters"]["gradient_clip_val"] == 1.0
    assert "val_wer" in info["metrics"] and "train_loss" in info["metrics"]
    assert {"nemo", "torch", "lightning", "flywheel"} <= set(info["versions"])
    assert not (trained_ctc.model_path.parent / ".checkpoints").exists()  # cleaned after a complete save


def test_replay_rows_are_recorded_in_the_run_info(trained_ctc):
    info = json.loads(trained_ctc.run_info_path.read_text())
    replay = info["replay"]
    assert replay["rows_mixed"] == 3 and replay["fraction"] == 0.1 and replay["seed"] == 5
    assert replay["source"].endswith("general.jsonl") and len(replay["source_version"]) == 64
    assert info["dataset"]["train"]["rows"] == replay["clinical_rows"] + 3
    assert info["dataset"]["train"]["rows"] + info["dataset"]["validation"]["rows"] == 32 + 3


def test_the_run_info_says_what_the_container_run_still_does_differently(trained_ctc):
    info = json.loads(trained_ctc.run_info_path.read_text())
    argv = shlex.split(trained_ctc.container_command)
    assert "nvcr.io/nvidia/nemo:25.11.01" in argv and "--seed" in argv
    differences = " ".join(info["container"]["differences"])
    assert "precision: this run used 32" in differences and "device: this run used the CPU" in differences
    assert "sample rate" not in differences  # read from the local .nemo and forwarded
    script = (trained_ctc.model_path.parent / "container_command.sh").read_text()
    assert script == trained_ctc.container_command and script.rstrip().endswith("adapted_model.nemo")


def test_trained_model_restores_transcribes_and_scores(trained_ctc, tiny_dataset, tmp_path):
    # restore_from through the same loader users hit, then batched transcription and scoring
    res = steps.evaluate(tiny_dataset, str(trained_ctc.model_path), tmp_path / "eval", batch_size=8)
    hyps = [json.loads(x) for x in (tmp_path / "eval" / "offline_hyps.jsonl").read_text().splitlines()]
    assert len(hyps) == 32 and all(isinstance(h["hyp"], str) for h in hyps)
    assert res.report.metrics.headline.n == 32 and 0.0 <= res.report.metrics.headline.ker <= 1.0
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


def test_container_prepare_step_gives_the_base_the_runs_spec_augment(nemo_tiny_models, tmp_path):
    """What `container_entry.py prepare` does inside the container, run here on a tiny model."""
    from asr_flywheel.backends.nemo._runtime import load_asr_model
    from asr_flywheel.backends.nemo.container_entry import prepare
    from asr_flywheel.backends.nemo.recipe import DEFAULTS, spec_augment_config

    masks = spec_augment_config({**DEFAULTS, "time_masks": 7, "freq_width": 9})
    on = load_asr_model(prepare(str(nemo_tiny_models["ctc"]), str(tmp_path / "on.nemo"), masks))
    assert on.spec_augmentation is not None
    assert (on.cfg.spec_augment.time_masks, on.cfg.spec_augment.freq_width) == (7, 9)
    off = load_asr_model(prepare(str(nemo_tiny_models["ctc"]), str(tmp_path / "off.nemo"), None))
    assert off.spec_augmentation is None


def tiny_weights(path):
    import io
    import tarfile

    import torch

    with tarfile.open(path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_weights.ckpt"))
        return torch.load(io.BytesIO(tar.extractfile(member).read()), map_location="cpu")


def test_tiny_models_are_seeded_and_spell_digits_and_hyphens(tmp_path):
    import torch

    from asr_flywheel.backends.nemo._runtime import load_asr_model
    from asr_flywheel.backends.nemo.tiny import build_tiny_model

    texts = ["give cefazolin two grams", "the patient is stable"]
    a, b, c = (
        build_tiny_model("ctc", texts, tmp_path / f"{n}.nemo", seed=s, subsampling_factor=4)
        for n, s in (("a", 1), ("b", 1), ("c", 2))
    )
    wa, wb, wc = tiny_weights(a), tiny_weights(b), tiny_weights(c)
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)
    model = load_asr_model(str(a))
    assert model.cfg.encoder.subsampling_factor == 4
    tok = model.tokenizer
    assert tok.ids_to_text(tok.text_to_ids("a1c piperacillin-tazobactam")) == "a1c piperacillin-tazobactam"


def test_the_trainer_uses_the_base_model_resolved_in_the_request(nemo_tiny_models, split_dir, tmp_path, monkeypatch):
    """A refused entry travels in the request and the trainer refuses it without asking the plugin manager."""
    import asr_flywheel.plugins.manager as manager
    from asr_flywheel.backends.nemo.trainer import NemoTrainer
    from asr_flywheel.plugins.contracts import BaseModel, SftViability, TrainRequest

    monkeypatch.setattr(manager, "Plugins", None)  # any query of the plugin manager would crash
    entry = BaseModel(
        name="tiny",
        family="FastConformer-CTC",
        decoder=Decoder.CTC,
        backend="nemo",
        sft=SftViability.REFUSED,
        refusal_reason="known to collapse",
        source=str(nemo_tiny_models["ctc"]),
    )
    request = TrainRequest(
        base="tiny",
        train_manifest=split_dir / "train.jsonl",
        validation_manifest=split_dir / "validation.jsonl",
        out_dir=tmp_path / "out",
        base_model=entry,
    )
    with pytest.raises(RefusedError, match="known to collapse"):
        NemoTrainer().train(request)
    assert not (tmp_path / "out").exists()


def test_freeze_pre_encode_trains_everything_but_the_subsampling_block(nemo_tiny_models, split_dir, tmp_path):
    import torch

    base = tiny_weights(nemo_tiny_models["ctc"])
    res = steps.train(
        split_dir, str(nemo_tiny_models["ctc"]), tmp_path, hyperparameters={**FAST, "freeze_pre_encode": True}
    )
    tuned = tiny_weights(res.model_path)
    frozen = [k for k in base if k.startswith("encoder.pre_encode.")]
    trained = [k for k in base if k.startswith("encoder.layers.") and base[k].is_floating_point()]
    assert frozen and all(torch.equal(base[k], tuned[k]) for k in frozen)
    assert any(not torch.equal(base[k], tuned[k]) for k in trained)
    info = json.loads(res.run_info_path.read_text())
    assert info["hyperparameters"]["freeze_pre_encode"] is True
    assert any(d.startswith("freeze_pre_encode:") for d in info["container"]["differences"])


def test_a_switch_hyperparameter_must_be_true_or_false(nemo_tiny_models, split_dir, tmp_path):
    with pytest.raises(InputError) as err:
        steps.train(split_dir, str(nemo_tiny_models["ctc"]), tmp_path, hyperparameters={"freeze_pre_encode": "yes"})
    assert "freeze_pre_encode" in str(err.value) and "true or false" in str(err.value)
    assert not (tmp_path / "adapted_model.nemo").exists()
