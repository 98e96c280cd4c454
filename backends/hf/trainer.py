"""MedASR (LasrForCTC) fine-tuning with `transformers.Trainer`, following Google's notebook, pitfalls fixed.

Defaults are the notebook's: lr 3e-5, warmup 300, batch 8 × grad-accum 4, bf16 when the GPU supports it, 5
epochs, evaluate/save each epoch, keep the best model by eval WER. What differs from the notebook, and why:

* batches carry the audio attention mask (the model's loss crashes without it with labels),
* eval predictions blank frames past each clip's end (the notebook decodes padding as text),
* references are decoded with `group_tokens=False` (CTC repeat-merging turns "blood" into "blod"),
* WER uses the flywheel's own normalisation and edit distance, so it matches the leaderboard's,
* label text is the flywheel-normalised transcript and must round-trip through the tokenizer (out-of-vocabulary
  characters otherwise silently become word boundaries), and clips of 0.6 s or less are refused, not dropped.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.backends.hf._runtime import MIN_TRAIN_SECONDS, is_hf_model_dir, model_type
from asr_flywheel.backends.training_common import (
    RUN_INFO,
    RunInfo,
    base_versions,
    dataset_record,
    fingerprint,
    preamble,
)
from asr_flywheel.errors import FlywheelError, InputError, Problem
from asr_flywheel.normalize import normalize_many
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability, TrainRequest, TrainResult
from asr_flywheel.plugins.hyperparameters import merge_hyperparameters as merge

MODEL_DIR = "adapted_model"
__all__ = ["DEFAULTS", "MODEL_DIR", "RUN_INFO", "HfCtcTrainer", "TrainingError", "preflight"]
RECIPE = "transformers Trainer, Google MedASR notebook defaults (pitfalls fixed)"

DEFAULTS: dict = {
    "lr": 3e-5,
    "warmup_steps": 300,
    "batch_size": 8,
    "gradient_accumulation_steps": 4,
    "epochs": 5,  # the notebook continues to ~35
    "precision": "auto",  # bf16 when the GPU supports it, else fp32
    "weight_decay": 0.0,
    "max_grad_norm": 1.0,
    "eval_batch_size": 8,
    "save_total_limit": 2,
    "seed": 42,
    "logging_steps": 10,
    "dataloader_num_workers": 0,
}


class TrainingError(FlywheelError):
    pass


def merge_hyperparameters(overrides: dict) -> dict:
    hp = merge(
        DEFAULTS,
        overrides,
        "Hugging Face",
        positive=("lr", "epochs", "batch_size", "gradient_accumulation_steps", "eval_batch_size"),
    )
    if hp["precision"] not in ("auto", "bf16", "32", "fp32"):
        raise InputError(
            f"precision must be auto, bf16 or 32 (fp16 is not supported for CTC training here), got {hp['precision']!r}"
        )
    return hp


def labelled_rows(manifest: Path) -> list[dict]:
    """Rows with `label`: the flywheel-normalised transcript the model learns (and must round-trip)."""
    rows = fio.read_jsonl(manifest)
    for r, label in zip(rows, normalize_many([r["text"] for r in rows]), strict=True):
        r["label"] = label
    return rows


def preflight(rows: list[dict], processor, name: str) -> None:
    """Labels must survive the tokenizer, and clips must be long enough for CTC to align."""
    problems = []
    tok = processor.tokenizer
    for line, r in enumerate(rows, start=1):
        ids = tok(r["label"]).input_ids
        back = " ".join(tok.decode(ids, skip_special_tokens=True, group_tokens=False).split())
        if back != r["label"]:
            missing = sorted(
                {c for c in r["label"] if c != " " and tok.convert_tokens_to_ids(c) == tok.unk_token_id}
                or set(r["label"]) - set(back)
            )
            problems.append(
                Problem(
                    line,
                    "text",
                    f"does not round-trip through the model's tokenizer "
                    f"({back!r}); characters not in its vocabulary: {''.join(missing)!r}",
                )
            )
        dur = r.get("duration")
        if isinstance(dur, int | float) and dur <= MIN_TRAIN_SECONDS:
            problems.append(
                Problem(
                    line,
                    "duration",
                    f"{dur} s clip: CTC cannot align clips of {MIN_TRAIN_SECONDS} s "
                    "or less (Google's recipe drops them; remove them from the manifest)",
                )
            )
    if problems:
        raise InputError(f"{name}: {len(problems)} row(s) cannot be used to fine-tune this model", problems)


def use_bf16(hp: dict) -> tuple[bool, bool]:
    """(CUDA available, train in bf16): bf16 only on a GPU that supports it."""
    import torch

    cuda = torch.cuda.is_available()
    return cuda, hp["precision"] in ("auto", "bf16") and cuda and torch.cuda.is_bf16_supported()


class HfCtcTrainer:
    name = "hf"

    def check_hyperparameters(self, overrides: dict) -> dict:
        """Overrides merged over the defaults; InputError for unknown keys or bad values, before any compute."""
        return merge_hyperparameters(overrides)

    def claims(self, model_ref: str) -> bool:
        return is_hf_model_dir(model_ref)

    def describe(self, model_ref: str) -> BaseModel:
        if not is_hf_model_dir(model_ref):
            raise InputError(f"not a Hugging Face model directory (needs config.json): {model_ref}")
        mt = model_type(model_ref)
        return BaseModel(
            name=model_ref,
            family=f"{mt} (Hugging Face CTC)",
            decoder=Decoder.CTC,
            backend="hf",
            sft=SftViability.ALLOWED,
            source=model_ref,
        )

    def train(self, request: TrainRequest) -> TrainResult:
        hp, out = preamble(request, merge_hyperparameters)
        return self._fit(request, hp, out)

    def _fit(self, request: TrainRequest, hp: dict, out: Path) -> TrainResult:
        import transformers

        from asr_flywheel.backends.hf import _training as ht
        from asr_flywheel.backends.hf._runtime import load_processor_and_model

        entry = request.base_model
        processor, model = load_processor_and_model(entry.weights)
        train_rows, val_rows = labelled_rows(request.train_manifest), labelled_rows(request.validation_manifest)
        preflight(train_rows, processor, str(request.train_manifest))
        preflight(val_rows, processor, str(request.validation_manifest))

        cuda, bf16 = use_bf16(hp)
        ckpt_dir = out / ".checkpoints" / fingerprint(entry.weights, hp, request.train_manifest)
        trainer = ht.CTCTrainer(
            model=model,
            args=ht.training_arguments(hp, str(ckpt_dir), cuda=cuda, bf16=bf16),
            train_dataset=ht.SpeechDataset(train_rows, processor),
            eval_dataset=ht.SpeechDataset(val_rows, processor),
            data_collator=ht.Collator(processor),
            compute_metrics=ht.CtcMetrics(processor.tokenizer),
            processing_class=processor,
            callbacks=[ht.ProgressCallback(request.progress)],
        )
        resumed = ckpt_dir.is_dir() and any(p.name.startswith("checkpoint-") for p in ckpt_dir.iterdir())
        t = time.perf_counter()
        try:
            result = trainer.train(resume_from_checkpoint=True if resumed else None)
        except Exception as exc:
            raise TrainingError(f"training failed: {type(exc).__name__}: {exc}") from exc
        fit_s = round(time.perf_counter() - t, 2)
        final_eval = trainer.evaluate()
        with fio.atomic_dir(out / MODEL_DIR) as tmp:
            trainer.save_model(str(tmp))
            processor.save_pretrained(str(tmp))
        shutil.rmtree(out / ".checkpoints", ignore_errors=True)
        metrics = {k: float(v) for k, v in {**result.metrics, **final_eval}.items() if isinstance(v, int | float)}
        dataset, replay = dataset_record(request)
        info = RunInfo(
            backend=self.name,
            base_model=request.base,
            weights=entry.weights,
            method=request.method,
            recipe=RECIPE,
            architecture={"class": type(model).__name__, "decoder": str(Decoder.CTC), "family": entry.family},
            hyperparameters={**hp, "bf16": bf16},
            dataset=dataset,
            metrics=metrics,
            resumed_from_checkpoint=resumed,
            timings={"fit_s": fit_s},
            versions=base_versions(transformers=transformers.__version__),
            device="cuda" if cuda else "cpu",
            replay=replay,
            extra={
                "best_eval_wer": trainer.state.best_metric,
                "eval_history": [h for h in trainer.state.log_history if "eval_wer" in h],
                "scale_out": "multi-GPU Hugging Face training runs under `torchrun`/`accelerate launch`; "
                f"requested devices={request.devices}, num_nodes={request.num_nodes}",
            },
        )
        info_path = info.write(out)
        return TrainResult(model_path=out / MODEL_DIR, run_info_path=info_path, run_info=info.to_dict())
