"""The NeMo SFT recipe as data: hyperparameter defaults and the config sections built from them.

Both the in-process run (`trainer.py`) and the container command (`container.py`) are built from these
functions, so the two cannot disagree: the container's Hydra overrides are these sections flattened. Light:
no torch or NeMo import.
"""

from __future__ import annotations

from asr_flywheel.errors import RefusedError
from asr_flywheel.plugins.contracts import Decoder
from asr_flywheel.plugins.hyperparameters import merge_hyperparameters as merge

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
    "early_stopping_patience": 3,  # on validation WER; 0 disables
    "spec_augment": True,
    # Keep the encoder's convolutional subsampling (its first block) as the base trained it: its backward pass is
    # skipped (on CPU the demo-sized model fits in 0.75x the time); on the development manifest it forgot more.
    "freeze_pre_encode": False,
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

BETAS = [0.9, 0.98]
SCHEDULER = "CosineAnnealing"
SPEC_AUGMENT_TARGET = "nemo.collections.asr.modules.SpectrogramAugmentation"


#: Lightning's precision names (`resolve_precision` then refuses fp16 for TDT and falls back from bf16 on CPU).
PRECISIONS = (
    "32", "32-true", "fp32", "64", "64-true", "bf16", "bf16-mixed", "bf16-true",
    "16", "16-mixed", "16-true", "fp16", "fp16-mixed", "half",
)  # fmt: skip


def merge_hyperparameters(overrides: dict) -> dict:
    return merge(
        DEFAULTS,
        overrides,
        "NeMo",
        positive=("lr", "epochs", "batch_size", "accumulate_grad_batches"),
        choices={"precision": PRECISIONS},
    )


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


def optim_config(hp: dict) -> dict:
    """`model.optim`: what `setup_optimization` receives (AdamW + cosine annealing with warm-up)."""
    return {
        "name": "adamw",
        "lr": hp["lr"],
        "betas": list(BETAS),
        "weight_decay": hp["weight_decay"],
        "sched": {"name": SCHEDULER, "warmup_steps": hp["warmup_steps"], "warmup_ratio": None, "min_lr": hp["min_lr"]},
    }


def train_ds_config(hp: dict, *, on_gpu: bool) -> dict:
    """`model.train_ds` without the manifest path and sample rate (those depend on where the run happens)."""
    return {
        "batch_size": hp["batch_size"],
        "num_workers": hp["num_workers"],
        "pin_memory": on_gpu,
        "shuffle": True,
        "max_duration": hp["max_duration"],
        "min_duration": hp["min_duration"],
        "is_tarred": False,
    }


def validation_ds_config(hp: dict, *, on_gpu: bool) -> dict:
    return {
        "batch_size": hp["batch_size"],
        "num_workers": hp["num_workers"],
        "pin_memory": on_gpu,
        "shuffle": False,
        "use_start_end_token": False,
    }


def trainer_config(hp: dict, precision: str) -> dict:
    """Lightning `Trainer` arguments that shape training (not logging): the stock yaml's `trainer` section."""
    return {
        "max_epochs": hp["epochs"],
        "max_steps": hp["max_steps"],
        "precision": precision,
        "gradient_clip_val": hp["gradient_clip_val"],
        "accumulate_grad_batches": hp["accumulate_grad_batches"],
        "num_sanity_val_steps": 0,
        "check_val_every_n_epoch": validation_interval(hp),
        "val_check_interval": 1.0,
        "sync_batchnorm": False,
    }


def validation_interval(hp: dict) -> int:
    """Epochs between validation runs. Without early stopping a per-epoch validation decides nothing (the last
    epoch's weights are saved either way), so it runs once, after the last epoch, for the final val_wer: on a
    small CPU fine-tune the per-epoch runs cost about a tenth of the time. Step-bounded runs keep every epoch."""
    if hp["early_stopping_patience"] or hp["max_steps"] > 0:
        return 1
    return max(1, int(hp["epochs"]))


def early_stopping_config(hp: dict) -> dict | None:
    """Lightning `EarlyStopping` arguments, or None when disabled. val_wer exists only after validation, so it
    is checked then, not at the end of the training epoch."""
    if not hp["early_stopping_patience"]:
        return None
    return {
        "monitor": "val_wer",
        "mode": "min",
        "patience": hp["early_stopping_patience"],
        "min_delta": 0.0,
        "check_on_train_epoch_end": False,
    }


def spec_augment_config(hp: dict) -> dict | None:
    """The model's `spec_augment` section (what its forward() applies), or None to train without it."""
    if not hp["spec_augment"]:
        return None
    masks = ("freq_masks", "time_masks", "freq_width", "time_width")
    return {"_target_": SPEC_AUGMENT_TARGET, **{k: hp[k] for k in masks}}
