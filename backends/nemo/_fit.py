"""The in-process half of the NeMo recipe: Lightning trainer, data, optimiser, SpecAugment, tokenizer.

Imports Lightning at module level, so `trainer.py` imports this module only when it trains. Each function is
one step of the stock script's sequence and takes its settings from `recipe.py`, the same sections the
container command forwards.
"""

from __future__ import annotations

from pathlib import Path

from lightning.pytorch import Callback, Trainer
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from omegaconf import OmegaConf, open_dict

from asr_flywheel.backends.nemo import recipe
from asr_flywheel.errors import InputError
from asr_flywheel.plugins.contracts import ProgressFn, TrainRequest


class ProgressCallback(Callback):
    """Reports (global step, estimated total steps) to the flow's progress function."""

    def __init__(self, progress: ProgressFn | None):
        self.progress = progress

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if self.progress:
            self.progress(trainer.global_step, max(int(trainer.estimated_stepping_batches), 1))


def callbacks(hp: dict, progress: ProgressFn | None, ckpt_dir: Path) -> list[Callback]:
    """Progress, a per-epoch `last.ckpt` (so a killed run resumes) and early stopping on val_wer."""
    out: list[Callback] = [
        ProgressCallback(progress),
        # At the end of every training epoch, not after validation: validation may run only after the last epoch
        # (`recipe.validation_interval`), and Lightning then saves nothing until it does.
        ModelCheckpoint(dirpath=ckpt_dir, save_last=True, save_top_k=0, every_n_epochs=1, save_on_train_epoch_end=True),
    ]
    stop = recipe.early_stopping_config(hp)
    if stop:
        out.append(EarlyStopping(**stop))
    return out


def build_trainer(request: TrainRequest, hp: dict, precision: str, on_gpu: bool, cbs: list, root: Path) -> Trainer:
    return Trainer(
        accelerator="gpu" if on_gpu else "cpu",
        devices=request.devices,
        num_nodes=request.num_nodes,
        strategy=request.strategy,
        **recipe.trainer_config(hp, precision),
        logger=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=1,
        callbacks=cbs,
        default_root_dir=str(root),
    )


def update_tokenizer(model, tokenizer_dir: str, tokenizer_type: str):
    """The stock script's `model.tokenizer.update_tokenizer=true`: change the vocabulary, and keep the trained
    decoder (and joint) when the new vocabulary has the same size."""
    vocab_size = model.tokenizer.vocab_size
    decoder = model.decoder.state_dict()
    joint = model.joint.state_dict() if hasattr(model, "joint") else None
    model.change_vocabulary(new_tokenizer_dir=tokenizer_dir, new_tokenizer_type=tokenizer_type)
    if model.tokenizer.vocab_size == vocab_size:
        model.decoder.load_state_dict(decoder)
        if joint is not None:
            model.joint.load_state_dict(joint)
    return model


def setup_data(model, request: TrainRequest, hp: dict, on_gpu: bool) -> None:
    """train_ds / validation_ds from the recipe; recorded in the model's config so the saved .nemo says what it
    was tuned on."""
    sr = {"sample_rate": model.cfg.sample_rate}
    train_cfg = OmegaConf.create(
        {**sr, "manifest_filepath": str(request.train_manifest), **recipe.train_ds_config(hp, on_gpu=on_gpu)}
    )
    val_cfg = OmegaConf.create(
        {**sr, "manifest_filepath": str(request.validation_manifest), **recipe.validation_ds_config(hp, on_gpu=on_gpu)}
    )
    with open_dict(model.cfg):
        model.cfg.train_ds = train_cfg
        model.cfg.validation_ds = val_cfg
    model.setup_training_data(train_cfg)
    model.setup_multiple_validation_data(val_cfg)


def apply_spec_augment(model, hp: dict) -> None:
    """Replace the model's masks with the run's. The stock script assigns `spec_augment`, but forward() reads
    `spec_augmentation`: this sets what is actually applied (the container does it in its prepare step)."""
    sa = recipe.spec_augment_config(hp)
    with open_dict(model.cfg):
        model.cfg.spec_augment = OmegaConf.create(sa) if sa else None
    model.spec_augmentation = model.from_config_dict(model.cfg.spec_augment) if sa else None


def freeze_pre_encode(model) -> None:
    """Fix the encoder's subsampling block: no gradient, so the optimiser leaves it as the base trained it."""
    block = getattr(getattr(model, "encoder", None), "pre_encode", None)
    if block is None:
        raise InputError(f"freeze_pre_encode: {type(model).__name__}'s encoder has no pre_encode block to freeze")
    block.requires_grad_(False)


def prepare_model(model, request: TrainRequest, hp: dict, on_gpu: bool, trainer: Trainer) -> None:
    """The stock script's sequence after restore: vocabulary → data → optimisation → SpecAugment."""
    if hp["tokenizer_dir"]:
        update_tokenizer(model, hp["tokenizer_dir"], hp["tokenizer_type"])
    if hp["freeze_pre_encode"]:
        freeze_pre_encode(model)
    model.set_trainer(trainer)  # so setup_optimization computes the schedule from the trainer right away
    setup_data(model, request, hp, on_gpu)
    model.setup_optimization(OmegaConf.create(recipe.optim_config(hp)))
    apply_spec_augment(model, hp)
