"""Stock NeMo SFT, in process: exactly what `examples/asr/speech_to_text_finetune.py` does.

restore_from / from_pretrained → (optional) vocabulary update → setup_training_data +
setup_multiple_validation_data → setup_optimization (AdamW, cosine annealing) → SpecAugment → Lightning
`Trainer.fit` → `save_to`. No adapters, no patches. Defaults are the methodology's, verified on
Parakeet-TDT-0.6B-v2; every one is overridable (`recipe.py`). The same run is also written as a container
command (`container.py`), forwarded key by key. A per-epoch Lightning checkpoint lets a killed run resume
instead of starting over; the finished model is written under a temp name and renamed, so an
`adapted_model.nemo` on disk is always complete.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from asr_flywheel.backends.nemo.container import ContainerPlan, write_container_run
from asr_flywheel.backends.nemo.recipe import DEFAULTS, merge_hyperparameters, resolve_precision
from asr_flywheel.backends.training_common import (
    RUN_INFO,
    RunInfo,
    base_versions,
    dataset_record,
    fingerprint,
    preamble,
)
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.plugins.contracts import BaseModel, Decoder, TrainRequest, TrainResult

MODEL_FILE = "adapted_model.nemo"
RECIPE = "stock NeMo SFT (speech_to_text_finetune.py sequence)"

__all__ = ["DEFAULTS", "MODEL_FILE", "RUN_INFO", "NemoTrainer", "TrainingError", "merge_hyperparameters"]
__all__ += ["resolve_precision"]


class TrainingError(FlywheelError):
    pass


def usable_checkpoint(path: Path) -> bool:
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


def known_sample_rate(weights: str) -> int | None:
    """The sample rate of a local .nemo (read from its config, no torch); None for a hub name."""
    from asr_flywheel.backends.nemo.architecture import read_nemo_config

    return read_nemo_config(weights).get("sample_rate") if Path(weights).is_file() else None


def run_differences(plan: ContainerPlan, hp: dict, precision: str, on_gpu: bool, sample_rate) -> list[str]:
    """What the container run would do differently from this in-process run, beyond the plan's own list."""
    out = list(plan.differences)
    if precision != str(hp["precision"]).lower():
        out.append(f"precision: this run used {precision}; the container uses {hp['precision']} on its GPU")
    if not on_gpu:
        out.append("device: this run used the CPU; the container trains on GPUs")
    if "sample rate" in " ".join(plan.differences) and sample_rate != 16000:
        out.append(f"sample rate: the base model's is {sample_rate}, the stock yaml's 16000")
    return out


def device_and_precision(request: TrainRequest, hp: dict, out: Path) -> tuple[bool, str, str | None]:
    """(on GPU, precision, note); TDT without CUDA is refused here, after the container command is written."""
    import torch

    on_gpu = torch.cuda.is_available() and request.accelerator in ("auto", "gpu", "cuda")
    decoder = request.base_model.decoder
    if decoder is Decoder.TDT and not on_gpu:
        raise TrainingError(
            "NeMo's TDT loss runs only on CUDA and no GPU is available here. Run the generated container "
            f"command on a GPU host ({out / 'container_command.sh'}), or fine-tune a CTC/RNNT base."
        )
    precision, note = resolve_precision(hp["precision"], decoder, on_gpu, on_gpu and torch.cuda.is_bf16_supported())
    return on_gpu, precision, note


def final_metrics(trainer) -> dict:
    """Scalar metrics of the finished run; NaN anywhere means the model is not saved."""
    metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if getattr(v, "numel", lambda: 1)() == 1}
    if any(v != v for v in metrics.values()):
        raise TrainingError(f"training produced NaN metrics {metrics}; not saving the model")
    return metrics


def save_atomically(model, final: Path) -> Path:
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    model.save_to(str(tmp))
    os.replace(tmp, final)
    return final


class NemoTrainer:
    name = "nemo"

    def check_hyperparameters(self, overrides: dict) -> dict:
        """Overrides merged over the defaults; InputError for unknown keys or bad values, before any compute."""
        return merge_hyperparameters(overrides)

    def claims(self, model_ref: str) -> bool:
        return model_ref.endswith(".nemo") and Path(model_ref).is_file()

    def describe(self, model_ref: str) -> BaseModel:
        from asr_flywheel.backends.nemo.architecture import describe_config, read_nemo_config

        if not self.claims(model_ref):
            raise InputError(f"not a NeMo model file: {model_ref}")
        return describe_config(model_ref, read_nemo_config(model_ref))

    def train(self, request: TrainRequest) -> TrainResult:
        hp, out = preamble(request, merge_hyperparameters)
        weights = request.base_model.weights
        fp = fingerprint(weights, hp, request.train_manifest)
        plan = write_container_run(
            weights=weights,
            base_is_file=Path(weights).is_file(),
            train_manifest=request.train_manifest,
            validation_manifest=request.validation_manifest,
            out_dir=out,
            hp=hp,
            fingerprint=fp,
            devices=request.devices,
            num_nodes=request.num_nodes,
            strategy=request.strategy,
            sample_rate=known_sample_rate(weights),
        )
        return self._fit(request, hp, out, plan, fp)

    def _fit(self, request: TrainRequest, hp: dict, out: Path, plan: ContainerPlan, fp: str) -> TrainResult:
        from lightning.pytorch import seed_everything
        from omegaconf import OmegaConf

        from asr_flywheel.backends.nemo import _fit
        from asr_flywheel.backends.nemo._runtime import load_asr_model
        from asr_flywheel.backends.nemo.architecture import decoder_of

        entry = request.base_model
        on_gpu, precision, note = device_and_precision(request, hp, out)
        seed_everything(hp["seed"], workers=True)
        t = time.perf_counter()
        model = load_asr_model(entry.weights)
        timings = {"restore_s": round(time.perf_counter() - t, 2)}
        cfg_dict = OmegaConf.to_container(model.cfg, resolve=False)
        cfg_dict["target"] = f"{type(model).__module__}.{type(model).__name__}"

        ckpt_dir = out / ".checkpoints"
        cbs = _fit.callbacks(hp, request.progress, ckpt_dir / fp)
        trainer = _fit.build_trainer(request, hp, precision, on_gpu, cbs, ckpt_dir)
        _fit.prepare_model(model, request, hp, on_gpu, trainer)
        resume = ckpt_dir / fp / "last.ckpt"
        resumed = usable_checkpoint(resume)
        t = time.perf_counter()
        try:
            trainer.fit(model, ckpt_path=str(resume) if resumed else None)
        except Exception as exc:
            raise TrainingError(f"training failed: {type(exc).__name__}: {exc}") from exc
        timings["fit_s"] = round(time.perf_counter() - t, 2)
        metrics = final_metrics(trainer)
        final = save_atomically(model, out / MODEL_FILE)
        shutil.rmtree(ckpt_dir, ignore_errors=True)

        dataset, replay = dataset_record(request)
        differences = run_differences(plan, hp, precision, on_gpu, model.cfg.get("sample_rate"))
        info = RunInfo(
            backend=self.name,
            base_model=request.base,
            weights=entry.weights,
            method=request.method,
            recipe=RECIPE,
            architecture={"class": type(model).__name__, "decoder": str(decoder_of(cfg_dict)), "family": entry.family},
            hyperparameters={**hp, "precision": precision},
            dataset=dataset,
            metrics=metrics,
            resumed_from_checkpoint=resumed,
            timings=timings,
            versions=base_versions(**_nemo_versions()),
            device="cuda" if on_gpu else "cpu",
            replay=replay,
            extra={
                "precision_note": note,
                "epochs_run": trainer.current_epoch,
                "global_steps": trainer.global_step,
                "early_stopped": any(getattr(c, "stopped_epoch", 0) > 0 for c in cbs),
                "devices": request.devices,
                "num_nodes": request.num_nodes,
                "strategy": request.strategy,
                "container_command": plan.script,
                "container": {**plan.to_dict(), "differences": differences},
            },
        )
        info_path = info.write(out)
        return TrainResult(final, info_path, info.to_dict(), container_command=plan.script)


def _nemo_versions() -> dict:
    import lightning
    import nemo

    return {"nemo": nemo.__version__, "lightning": lightning.__version__}
