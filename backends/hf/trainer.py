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

import hashlib
import json
import platform
import shutil
import time
from pathlib import Path

from asr_flywheel import __version__ as flywheel_version
from asr_flywheel import io as fio
from asr_flywheel.backends.hf._runtime import MIN_TRAIN_SECONDS, SAMPLE_RATE, is_hf_model_dir, load_audio, model_type
from asr_flywheel.errors import FlywheelError, InputError, Problem
from asr_flywheel.normalize import normalize_many
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability, TrainRequest, TrainResult
from asr_flywheel.plugins.hyperparameters import merge_hyperparameters as merge

MODEL_DIR = "adapted_model"
RUN_INFO = "training_run_info.json"

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


def _rows(manifest: Path) -> list[dict]:
    return fio.read_jsonl(manifest)


class _SpeechDataset:
    """Features are computed on the fly (no cache files), labels from the normalised transcript."""

    def __init__(self, rows: list[dict], processor):
        self.rows = rows
        self.processor = processor

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        r = self.rows[i]
        feats = self.processor.feature_extractor(load_audio(r["audio_filepath"]), sampling_rate=SAMPLE_RATE)
        return {"input_features": feats["input_features"][0], "labels": self.processor.tokenizer(r["label"]).input_ids}


class _Collator:
    def __init__(self, processor):
        self.processor = processor

    def __call__(self, items: list[dict]) -> dict:
        batch = self.processor.feature_extractor.pad(
            [{"input_features": x["input_features"]} for x in items],
            padding="longest",
            return_attention_mask=True,
            return_tensors="pt",
        )
        labels = self.processor.tokenizer.pad(
            {"input_ids": [x["labels"] for x in items]}, padding="longest", return_tensors="pt"
        )
        batch["labels"] = labels["input_ids"].masked_fill(labels["attention_mask"] == 0, -100)
        return batch


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


def corpus_wer(refs: list[str], hyps: list[str]) -> tuple[float, float]:
    from asr_flywheel.metrics import score_rows

    refs, hyps = normalize_many(refs), normalize_many(hyps)
    keep = [i for i, r in enumerate(refs) if r]
    s = score_rows([refs[i] for i in keep], [hyps[i] for i in keep], [None] * len(keep))
    return float(s.word_errors.sum() / s.ref_words.sum()), float(s.char_errors.sum() / s.ref_chars.sum())


class HfCtcTrainer:
    name = "hf"

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
        from asr_flywheel.plugins.catalogue import check_sft_request
        from asr_flywheel.plugins.manager import Plugins

        entry = Plugins().base_model(request.base) or self.describe(request.base)
        check_sft_request(request.base, entry.decoder, request.method, entry)
        hp = merge_hyperparameters(request.hyperparameters)
        return self._fit(request, entry, hp, Path(request.out_dir))

    def _fit(self, request: TrainRequest, entry: BaseModel, hp: dict, out: Path) -> TrainResult:
        import numpy as np
        import torch
        import transformers
        from transformers import Trainer, TrainerCallback, TrainingArguments

        from asr_flywheel.backends.hf._runtime import load_processor_and_model

        processor, model = load_processor_and_model(entry.weights)
        train_rows, val_rows = _rows(request.train_manifest), _rows(request.validation_manifest)
        for rows in (train_rows, val_rows):
            for r, label in zip(rows, normalize_many([r["text"] for r in rows]), strict=True):
                r["label"] = label
        preflight(train_rows, processor, str(request.train_manifest))
        preflight(val_rows, processor, str(request.validation_manifest))

        cuda = torch.cuda.is_available()
        bf16 = hp["precision"] in ("auto", "bf16") and cuda and torch.cuda.is_bf16_supported()
        tok = processor.tokenizer
        progress = request.progress

        class CTCTrainer(Trainer):
            def prediction_step(self, model, inputs, prediction_loss_only, ignore_keys=None):
                inputs = self._prepare_inputs(inputs)
                with torch.no_grad():
                    output = model(**inputs)
                loss = output.loss.detach() if output.loss is not None else None
                if prediction_loss_only:
                    return loss, None, None
                ids = output.logits.argmax(-1)
                mask = model._get_output_attention_mask(inputs["attention_mask"], target_length=ids.shape[1])
                return loss, ids.masked_fill(~mask, model.config.pad_token_id), inputs.get("labels")

        def compute_metrics(pred) -> dict:
            ids = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
            ids = np.where(ids < 0, tok.pad_token_id, ids)
            labels = np.where(pred.label_ids == -100, tok.pad_token_id, pred.label_ids)
            hyps = tok.batch_decode(ids, skip_special_tokens=True)
            refs = tok.batch_decode(labels, skip_special_tokens=True, group_tokens=False)
            wer, cer = corpus_wer(refs, hyps)
            return {"wer": wer, "cer": cer}

        class Progress(TrainerCallback):
            def on_step_end(self, args, state, control, **kwargs):
                if progress:
                    progress(state.global_step, max(state.max_steps, 1))

        fingerprint = hashlib.sha256(
            json.dumps([entry.weights, hp, str(request.train_manifest)], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        ckpt_dir = out / ".checkpoints" / fingerprint
        args = TrainingArguments(
            output_dir=str(ckpt_dir),
            per_device_train_batch_size=hp["batch_size"],
            per_device_eval_batch_size=hp["eval_batch_size"],
            gradient_accumulation_steps=hp["gradient_accumulation_steps"],
            learning_rate=hp["lr"],
            warmup_steps=hp["warmup_steps"],
            num_train_epochs=hp["epochs"],
            weight_decay=hp["weight_decay"],
            max_grad_norm=hp["max_grad_norm"],
            bf16=bf16,
            fp16=False,
            use_cpu=not cuda,
            eval_strategy="epoch",
            save_strategy="epoch",
            save_total_limit=hp["save_total_limit"],
            load_best_model_at_end=True,
            metric_for_best_model="wer",
            greater_is_better=False,
            logging_steps=hp["logging_steps"],
            report_to=[],
            seed=hp["seed"],
            remove_unused_columns=False,
            dataloader_num_workers=hp["dataloader_num_workers"],
            dataloader_pin_memory=cuda,
            disable_tqdm=True,
        )
        trainer = CTCTrainer(
            model=model,
            args=args,
            train_dataset=_SpeechDataset(train_rows, processor),
            eval_dataset=_SpeechDataset(val_rows, processor),
            data_collator=_Collator(processor),
            compute_metrics=compute_metrics,
            processing_class=processor,
            callbacks=[Progress()],
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
        metrics = {
            **{k: float(v) for k, v in result.metrics.items() if isinstance(v, int | float)},
            **{k: float(v) for k, v in final_eval.items() if isinstance(v, int | float)},
        }
        info = {
            "backend": self.name,
            "base_model": request.base,
            "weights": entry.weights,
            "method": request.method,
            "recipe": "transformers Trainer, Google MedASR notebook defaults (pitfalls fixed)",
            "architecture": {"class": type(model).__name__, "decoder": str(Decoder.CTC), "family": entry.family},
            "hyperparameters": {**hp, "bf16": bf16},
            "dataset": {"train": {"rows": len(train_rows)}, "validation": {"rows": len(val_rows)}},
            "metrics": metrics,
            "best_eval_wer": trainer.state.best_metric,
            "eval_history": [h for h in trainer.state.log_history if "eval_wer" in h],
            "resumed_from_checkpoint": resumed,
            "timings": {"fit_s": fit_s},
            "versions": {
                "flywheel": flywheel_version,
                "transformers": transformers.__version__,
                "torch": torch.__version__,
                "python": platform.python_version(),
            },
            "device": "cuda" if cuda else "cpu",
            "scale_out": "multi-GPU Hugging Face training runs under `torchrun`/`accelerate launch`; "
            f"requested devices={request.devices}, num_nodes={request.num_nodes}",
        }
        info_path = fio.write_json(out / RUN_INFO, info)
        return TrainResult(model_path=out / MODEL_DIR, run_info_path=info_path, run_info=info)
