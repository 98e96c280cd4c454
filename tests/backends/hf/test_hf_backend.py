"""Hugging Face MedASR backend on a tiny LasrForCTC built from config, with real espeak-ng audio (CPU)."""

import json
import os
import subprocess
import sys

import pytest

from asr_flywheel.backends.hf._training import corpus_wer
from asr_flywheel.backends.hf.trainer import preflight
from asr_flywheel.errors import InputError
from asr_flywheel.flows import steps
from helpers import start_fake_gated_hub

FAST = {"epochs": 1, "batch_size": 8, "gradient_accumulation_steps": 1, "warmup_steps": 1, "lr": 1e-3}


def test_tiny_model_reloads_through_the_auto_classes_offline(hf_tiny_model):
    code = (
        "from transformers import AutoModelForCTC, AutoProcessor; import sys; "
        f"p = AutoProcessor.from_pretrained({str(hf_tiny_model)!r}); m = AutoModelForCTC.from_pretrained("
        f"{str(hf_tiny_model)!r}); print(type(p).__name__, type(m).__name__, m.config.model_type)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    ).stdout
    assert out.split() == ["LasrProcessor", "LasrForCTC", "lasr_ctc"]


PROGRESS: list[tuple[int, int]] = []


@pytest.fixture(scope="module")
def trained(hf_tiny_model, tiny_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("hf-sft")
    return steps.train(
        tiny_split, str(hf_tiny_model), out, hyperparameters=FAST, progress=lambda d, t: PROGRESS.append((d, t))
    )


def test_training_reports_progress_step_by_step(trained):
    steps_done = [d for d, _ in PROGRESS]
    assert steps_done == list(range(1, len(steps_done) + 1)) and steps_done
    assert {t for _, t in PROGRESS} == {len(steps_done)}  # the total is known from the start


def test_sft_saves_a_pretrained_dir_with_run_info(trained):
    assert trained.model_path.name == "adapted_model"
    assert {"config.json", "model.safetensors", "processor_config.json", "tokenizer.json"} <= {
        p.name for p in trained.model_path.iterdir()
    }
    info = json.loads(trained.run_info_path.read_text())
    assert info["backend"] == "hf" and info["architecture"]["class"] == "LasrForCTC"
    assert "eval_wer" in info["metrics"] and info["eval_history"]
    assert info["hyperparameters"]["lr"] == 1e-3 and info["hyperparameters"]["bf16"] is False  # CPU: fp32
    assert not (trained.model_path.parent / ".checkpoints").exists()


def test_trained_dir_loads_with_from_pretrained_transcribes_and_scores(trained, tiny_dataset, tmp_path):
    res = steps.evaluate(tiny_dataset, str(trained.model_path), tmp_path, batch_size=8)
    assert res.report.metrics.headline.n == 32
    hyps = [json.loads(x)["hyp"] for x in (tmp_path / "offline_hyps.jsonl").read_text().splitlines()]
    assert all("</s>" not in h and "<epsilon>" not in h for h in hyps)


def test_batched_transcription_equals_one_at_a_time(hf_tiny_model, tiny_dataset):
    model = steps.load_model(str(hf_tiny_model))
    paths = [str(tiny_dataset.parent / "audio" / f"r{i:02d}.wav") for i in range(6)]
    assert model.transcribe(paths, batch_size=6) == [model.transcribe([p], batch_size=1)[0] for p in paths]


def test_references_keep_repeated_letters(hf_tiny_model):
    """CTC repeat-merging must not touch references: 'blood' decoded with the default becomes 'blod'."""
    from transformers import AutoProcessor

    tok = AutoProcessor.from_pretrained(hf_tiny_model).tokenizer
    ids = tok("give cefazolin").input_ids + tok("all good").input_ids
    merged = tok.decode(ids, skip_special_tokens=True)
    kept = tok.decode(ids, skip_special_tokens=True, group_tokens=False)
    assert "al " in merged or "god" in merged  # the pitfall exists
    assert "all good" in kept
    assert corpus_wer(["all good"], ["all good"]) == (0.0, 0.0)


def test_preflight_refuses_out_of_vocabulary_text_and_short_clips(hf_tiny_model):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(hf_tiny_model)
    rows = [
        {"label": "give cefazolin", "duration": 2.0},
        {"label": "give zz 42", "duration": 2.0},
        {"label": "give cefazolin", "duration": 0.5},
    ]
    with pytest.raises(InputError) as exc:
        preflight(rows, processor, "train.jsonl")
    lines = {(p.line, p.field) for p in exc.value.problems}
    assert lines == {(2, "text"), (3, "duration")}


@pytest.mark.parametrize("with_token", [False, True])
def test_gated_medasr_gives_an_actionable_error_and_never_leaks_the_token(with_token, tmp_path):
    """The Hugging Face Hub cannot be reached here: a local server answers like the Hub does for a gated repo."""
    server, url = start_fake_gated_hub()
    fake = "hf_FAKEtoken0123456789abcdefghijklmnop"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE")}
    env.update(HF_ENDPOINT=url, HF_HOME=str(tmp_path), HF_HUB_ETAG_TIMEOUT="2", HF_HUB_DOWNLOAD_TIMEOUT="2")
    if with_token:
        env["HF_TOKEN"] = fake
    code = "from asr_flywheel.backends.hf._runtime import load_processor_and_model as l; l('google/medasr')"
    try:
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    finally:
        server.shutdown()
    assert "gated on the Hugging Face Hub" in proc.stderr
    assert ("has no access" if with_token else "set HF_TOKEN") in proc.stderr
    assert fake not in proc.stderr + proc.stdout


def test_the_trainer_uses_the_base_model_resolved_in_the_request(hf_tiny_model, tiny_split, tmp_path, monkeypatch):
    """The trainer takes decoder and viability from the request, never from the plugin manager."""
    import asr_flywheel.plugins.manager as manager
    from asr_flywheel.backends.hf.trainer import HfCtcTrainer
    from asr_flywheel.errors import RefusedError
    from asr_flywheel.plugins.contracts import TrainRequest

    monkeypatch.setattr(manager, "Plugins", None)  # any query of the plugin manager would crash
    request = TrainRequest(
        base=str(hf_tiny_model),
        train_manifest=tiny_split / "train.jsonl",
        validation_manifest=tiny_split / "validation.jsonl",
        out_dir=tmp_path / "out",
        base_model=HfCtcTrainer().describe(str(hf_tiny_model)),
        method="lora",
    )
    with pytest.raises(RefusedError, match="stock SFT only"):
        HfCtcTrainer().train(request)
    assert not (tmp_path / "out").exists()


def test_tiny_medasr_is_seeded(tmp_path):
    from asr_flywheel.backends.hf.tiny import build_tiny_medasr

    texts = ["give cefazolin", "all good"]
    a, b, c = (build_tiny_medasr(texts, tmp_path / n, seed=s) for n, s in (("a", 1), ("b", 1), ("c", 2)))
    weights = [(p / "model.safetensors").read_bytes() for p in (a, b, c)]
    assert weights[0] == weights[1] != weights[2]
