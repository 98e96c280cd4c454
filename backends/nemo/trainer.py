"""Stock NeMo SFT, in process: exactly what `examples/asr/speech_to_text_finetune.py` does.

restore_from / from_pretrained → (optional) change_vocabulary → setup_training_data +
setup_multiple_validation_data → setup_optimization (AdamW, cosine annealing) → (optional) SpecAugment →
Lightning `Trainer.fit` → `save_to`. No adapters, no patches. Defaults are the methodology's, verified on
Parakeet-TDT-0.6B-v2; every one is overridable. A per-epoch Lightning checkpoint lets a killed run resume
instead of starting over; the finished model is written under a temp name and renamed, so an
`adapted_model.nemo` on disk is always complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import shutil
import time
from pathlib import Path

from asr_flywheel import __version__ as flywheel_version
from asr_flywheel import io as fio
from asr_flywheel.errors import FlywheelError, InputError, RefusedError
from asr_flywheel.plugins.contracts import BaseModel, Decoder, TrainRequest, TrainResult
from asr_flywheel.plugins.hyperparameters import merge_hyperparameters as merge

MODEL_FILE = "adapted_model.nemo"
RUN_INFO = "training_run_info.json"

DEFAULTS: dict = {
    "precision": "bf16-mixed",  # falls back to 32 where bf16 is unsupported; fp16 is refused for TDT (NaN losses)
    "lr": 3e-4,
    "min_lr": 1e-6,
    "weight_decay": 1e-3,
    "warmup_steps": 5,  # ~1 epoch of steps for large manifests
    "epochs": 3,  # smoke; 10-30 in production
    "max_steps": -1,
    "batch_size": 4,  # 16 on 48 GB GPUs
    "accumulate_grad_batches": 1,  # raise to keep the effective batch when memory is short
    "gradient_clip_val": 1.0,
    "early_stopping_patience": 3,  # on validation WER
    "spec_augment": True,
    "freq_masks": 2,
    "time_masks": 10,
    "freq_width": 27,
    "time_width": 0.05,
    "max_duration": 20.0,
    "min_duration": 0.1,
    "num_workers": 0,
    "seed": 42,
    "tokenizer_dir": None,  # set to change the vocabulary (stock script: model.tokenizer.update_tokenizer)
    "tokenizer_type": "bpe",
}


class TrainingError(FlywheelError):
    pass


def merge_hyperparameters(overrides: dict) -> dict:
    return merge(DEFAULTS, overrides, "NeMo", positive=("lr", "epochs", "batch_size", "accumulate_grad_batches"))


def resolve_precision(requested: str, decoder: Decoder, on_gpu: bool, bf16_ok: bool) -> tuple[str, str | None]:
    """(precision to use, note). Never fp16-mixed for TDT; bf16 falls back to fp32 where unsupported.

    On CPU bf16 autocast gives no speed-up and `bf16-true` breaks the CTC loss ("ctc_loss_cpu" has no BFloat16
    kernel), so CPU runs use fp32.
    """
    p = str(requested).lower()
    if p in ("16", "16-mixed", "fp16", "fp16-mixed", "half") and decoder is Decoder.TDT:
        raise RefusedError(
            "refusing fp16-mixed precision for a TDT model: it produces NaN losses; use bf16-mixed (default) or 32"
        )
    if p.startswith("bf16") and not on_gpu:
        return "32", f"no GPU: using fp32 instead of {requested} (bf16 on CPU is not faster and breaks CTC loss)"
    if p.startswith("bf16") and not bf16_ok:
        return "32", f"bf16 is not supported on this GPU; using fp32 instead of {requested}"
    return p, None


def _manifest_stats(path: Path) -> dict:
    rows = fio.read_jsonl(path)
    cats: dict[str, int] = {}
    for r in rows:
        c = r.get("entity_category") or "(none)"
        cats[c] = cats.get(c, 0) + 1
    return {
        "rows": len(rows),
        "hours": round(sum(float(r.get("duration") or 0) for r in rows) / 3600, 4),
        "categories": cats,
    }


def _versions() -> dict:
    import lightning
    import nemo
    import torch

    return {
        "flywheel": flywheel_version,
        "nemo": nemo.__version__,
        "torch": torch.__version__,
        "lightning": lightning.__version__,
        "python": platform.python_version(),
    }


def _usable_checkpoint(path: Path) -> bool:
    """A checkpoint a killed run left behind is resumed only if it loads: Lightning does not write it atomically."""
    if not path.is_file():
        return False
    import torch

    try:
        torch.load(path, map_location="cpu", weights_only=False)
        return True
    except Exception:
        shutil.rmtree(path.parent, ignore_errors=True)  # truncated by a kill mid-save: start this run afresh
        return False


class NemoTrainer:
    name = "nemo"

    def claims(self, model_ref: str) -> bool:
        return model_ref.endswith(".nemo") and Path(model_ref).is_file()

    def describe(self, model_ref: str) -> BaseModel:
        from asr_flywheel.backends.nemo.architecture import describe_config, read_nemo_config

        if not self.claims(model_ref):
            raise InputError(f"not a NeMo model file: {model_ref}")
        return describe_config(model_ref, read_nemo_config(model_ref))

    def train(self, request: TrainRequest) -> TrainResult:
        from asr_flywheel.plugins.catalogue import check_sft_request
        from asr_flywheel.plugins.manager import Plugins

        entry = Plugins().base_model(request.base) or self.describe(request.base)
        check_sft_request(request.base, entry.decoder, request.method, entry)
        hp = merge_hyperparameters(request.hyperparameters)
        out = Path(request.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        weights = entry.weights
        base_is_file = Path(weights).is_file()

        from asr_flywheel.backends.nemo.container import container_command

        command = container_command(
            base=weights,
            base_is_file=base_is_file,
            train_manifest=request.train_manifest,
            validation_manifest=request.validation_manifest,
            out_dir=out,
            hp=hp,
        )
        fio.write_text(
            out / "container_command.sh", f"#!/usr/bin/env bash\n# Same SFT inside NVIDIA's container.\n{command}\n"
        )
        return self._fit(request, entry, weights, hp, out, command)

    def _fit(
        self, request: TrainRequest, entry: BaseModel, weights: str, hp: dict, out: Path, command: str
    ) -> TrainResult:
        import torch
        from lightning.pytorch import Callback, Trainer, seed_everything
        from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
        from omegaconf import OmegaConf, open_dict

        from asr_flywheel.backends.nemo._runtime import load_asr_model, quiet_nemo
        from asr_flywheel.backends.nemo.architecture import decoder_of

        on_gpu = torch.cuda.is_available() and request.accelerator in ("auto", "gpu", "cuda")
        if entry.decoder is Decoder.TDT and not on_gpu:
            raise TrainingError(
                "NeMo's TDT loss runs only on CUDA and no GPU is available here. Run the generated container "
                f"command on a GPU host ({out / 'container_command.sh'}), or fine-tune a CTC/RNNT base."
            )
        precision, note = resolve_precision(
            hp["precision"], entry.decoder, on_gpu, on_gpu and torch.cuda.is_bf16_supported()
        )
        seed_everything(hp["seed"], workers=True)
        timings: dict[str, float] = {}
        t = time.perf_counter()
        quiet_nemo()
        model = load_asr_model(weights)
        timings["restore_s"] = round(time.perf_counter() - t, 2)
        cfg_dict = OmegaConf.to_container(model.cfg, resolve=False)
        cfg_dict["target"] = f"{type(model).__module__}.{type(model).__name__}"
        decoder = decoder_of(cfg_dict)

        if hp["tokenizer_dir"]:  # stock script: model.tokenizer.update_tokenizer=true
            model.change_vocabulary(new_tokenizer_dir=hp["tokenizer_dir"], new_tokenizer_type=hp["tokenizer_type"])

        ckpt_dir = out / ".checkpoints"
        fingerprint = hashlib.sha256(
            json.dumps([weights, hp, str(request.train_manifest)], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]
        resume = ckpt_dir / fingerprint / "last.ckpt"
        progress = request.progress

        class Progress(Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                if progress:
                    progress(trainer.global_step, max(int(trainer.estimated_stepping_batches), 1))

        callbacks = [
            Progress(),
            ModelCheckpoint(dirpath=ckpt_dir / fingerprint, save_last=True, save_top_k=0, every_n_epochs=1),
        ]
        if hp["early_stopping_patience"]:
            callbacks.append(
                EarlyStopping(
                    monitor="val_wer",
                    mode="min",
                    patience=hp["early_stopping_patience"],
                    check_on_train_epoch_end=False,
                )
            )  # val_wer exists only after validation
        trainer = Trainer(
            accelerator="gpu" if on_gpu else "cpu",
            devices=request.devices,
            num_nodes=request.num_nodes,
            strategy=request.strategy,
            max_epochs=hp["epochs"],
            max_steps=hp["max_steps"],
            precision=precision,
            gradient_clip_val=hp["gradient_clip_val"],
            accumulate_grad_batches=hp["accumulate_grad_batches"],
            logger=False,
            enable_progress_bar=False,
            enable_model_summary=False,
            num_sanity_val_steps=0,
            log_every_n_steps=1,
            check_val_every_n_epoch=1,
            callbacks=callbacks,
            default_root_dir=str(ckpt_dir),
        )
        model.set_trainer(trainer)  # so setup_optimization computes the schedule from the trainer right away

        common = {
            "sample_rate": model.cfg.sample_rate,
            "batch_size": hp["batch_size"],
            "num_workers": hp["num_workers"],
            "pin_memory": on_gpu,
        }
        train_cfg = OmegaConf.create(
            {
                **common,
                "manifest_filepath": str(request.train_manifest),
                "shuffle": True,
                "max_duration": hp["max_duration"],
                "min_duration": hp["min_duration"],
                "is_tarred": False,
            }
        )
        val_cfg = OmegaConf.create(
            {
                **common,
                "manifest_filepath": str(request.validation_manifest),
                "shuffle": False,
                "use_start_end_token": False,
            }
        )
        with open_dict(model.cfg):
            model.cfg.train_ds = train_cfg  # the saved .nemo records what it was tuned on
            model.cfg.validation_ds = val_cfg
        model.setup_training_data(train_cfg)
        model.setup_multiple_validation_data(val_cfg)
        model.setup_optimization(
            OmegaConf.create(
                {
                    "name": "adamw",
                    "lr": hp["lr"],
                    "betas": [0.9, 0.98],
                    "weight_decay": hp["weight_decay"],
                    "sched": {
                        "name": "CosineAnnealing",
                        "warmup_steps": hp["warmup_steps"],
                        "warmup_ratio": None,
                        "min_lr": hp["min_lr"],
                    },
                }
            )
        )
        if hp["spec_augment"]:
            sa = OmegaConf.create(
                {
                    "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
                    **{k: hp[k] for k in ("freq_masks", "time_masks", "freq_width", "time_width")},
                }
            )
            # The stock script assigns `spec_augment`; the models' forward() reads `spec_augmentation`.
            model.spec_augmentation = model.from_config_dict(sa)
            with open_dict(model.cfg):
                model.cfg.spec_augment = sa
        else:
            model.spec_augmentation = None

        t = time.perf_counter()
        resumed = _usable_checkpoint(resume)
        try:
            trainer.fit(model, ckpt_path=str(resume) if resumed else None)
        except Exception as exc:
            raise TrainingError(f"training failed: {type(exc).__name__}: {exc}") from exc
        timings["fit_s"] = round(time.perf_counter() - t, 2)
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
        if any(v != v for v in metrics.values()):  # NaN
            raise TrainingError(f"training produced NaN metrics {metrics}; not saving the model")

        final = out / MODEL_FILE
        tmp = out / f".{MODEL_FILE}.{os.getpid()}.tmp"
        model.save_to(str(tmp))
        os.replace(tmp, final)
        shutil.rmtree(ckpt_dir, ignore_errors=True)

        info = {
            "backend": self.name,
            "base_model": request.base,
            "weights": weights,
            "method": request.method,
            "recipe": "stock NeMo SFT (speech_to_text_finetune.py sequence)",
            "architecture": {"class": type(model).__name__, "decoder": str(decoder), "family": entry.family},
            "hyperparameters": {**hp, "precision": precision},
            "precision_note": note,
            "dataset": {
                "train": _manifest_stats(request.train_manifest),
                "validation": _manifest_stats(request.validation_manifest),
            },
            "metrics": metrics,
            "epochs_run": trainer.current_epoch,
            "global_steps": trainer.global_step,
            "early_stopped": any(isinstance(c, EarlyStopping) and c.stopped_epoch > 0 for c in callbacks),
            "resumed_from_checkpoint": resumed,
            "timings": timings,
            "versions": _versions(),
            "device": "cuda" if on_gpu else "cpu",
            "devices": request.devices,
            "num_nodes": request.num_nodes,
            "strategy": request.strategy,
            "container_command": command,
        }
        info_path = fio.write_json(out / RUN_INFO, info)
        return TrainResult(model_path=final, run_info_path=info_path, run_info=info, container_command=command)
