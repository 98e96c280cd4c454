"""The transformers pieces of MedASR fine-tuning: dataset, collator, CTC-aware Trainer, metrics, progress.

Imports transformers at module level, so `trainer.py` imports this module only when it trains. Every piece
is a module-level class, reachable by tests.
"""

from __future__ import annotations

import numpy as np
import torch
from transformers import Trainer, TrainerCallback, TrainingArguments

from asr_flywheel.backends.hf._runtime import SAMPLE_RATE, load_audio
from asr_flywheel.normalize import normalize_many
from asr_flywheel.plugins.contracts import ProgressFn


def corpus_wer(refs: list[str], hyps: list[str]) -> tuple[float, float]:
    from asr_flywheel.metrics import score_rows

    refs, hyps = normalize_many(refs), normalize_many(hyps)
    keep = [i for i, r in enumerate(refs) if r]
    s = score_rows([refs[i] for i in keep], [hyps[i] for i in keep], [None] * len(keep))
    return float(s.word_errors.sum() / s.ref_words.sum()), float(s.char_errors.sum() / s.ref_chars.sum())


class SpeechDataset:
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


class Collator:
    """Pads features with their attention mask (the loss crashes without it) and labels with -100."""

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


class CTCTrainer(Trainer):
    """Eval predictions are argmax ids with frames past each clip's end blanked (the notebook decodes padding)."""

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


class CtcMetrics:
    """`compute_metrics`: references decoded with `group_tokens=False` (CTC merging turns "blood" into "blod")."""

    def __init__(self, tokenizer):
        self.tok = tokenizer

    def __call__(self, pred) -> dict:
        tok = self.tok
        ids = pred.predictions[0] if isinstance(pred.predictions, tuple) else pred.predictions
        ids = np.where(ids < 0, tok.pad_token_id, ids)
        labels = np.where(pred.label_ids == -100, tok.pad_token_id, pred.label_ids)
        hyps = tok.batch_decode(ids, skip_special_tokens=True)
        refs = tok.batch_decode(labels, skip_special_tokens=True, group_tokens=False)
        wer, cer = corpus_wer(refs, hyps)
        return {"wer": wer, "cer": cer}


class ProgressCallback(TrainerCallback):
    def __init__(self, progress: ProgressFn | None):
        self.progress = progress

    def on_step_end(self, args, state, control, **kwargs):
        if self.progress:
            self.progress(state.global_step, max(state.max_steps, 1))


def training_arguments(hp: dict, output_dir: str, *, cuda: bool, bf16: bool) -> TrainingArguments:
    """Google's notebook settings: evaluate and save each epoch, keep the best model by eval WER."""
    return TrainingArguments(
        output_dir=output_dir,
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
