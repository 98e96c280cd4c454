"""The cycle's steps as plain functions: the CLI calls them directly, the Prefect flow wraps them as tasks.

Each step composes plugins (backends) with the pure core; none holds domain logic of its own. Keeping them
free of Prefect means `flywheel eval` / `flywheel train` behave exactly like the same step inside a flow.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError
from asr_flywheel.manifest import Manifest
from asr_flywheel.scoring import ScoreReport, score_manifest, write_score_outputs
from asr_flywheel.split import TRAIN_FILE, VALIDATION_FILE
from asr_flywheel.validation import load_manifest
from plugins.catalogue import check_sft_request
from plugins.contracts import BaseModel, LoadedModel, ProgressFn, TrainRequest, TrainResult
from plugins.manager import Plugins

OFFLINE_HYPS = "offline_hyps.jsonl"


def resolve_base(model_ref: str, backend: str | None = None, plugins: Plugins | None = None) -> tuple[BaseModel, str]:
    """(catalogue entry or description of a local model, backend name) for a base model reference."""
    plugins = plugins or Plugins()
    entry = plugins.base_model(model_ref)
    if entry is not None:
        if backend and backend != entry.backend:
            raise InputError(f"{model_ref} is a {entry.backend} model; --backend {backend} cannot train it")
        return entry, entry.backend
    trainers = plugins.trainers()
    if backend:
        trainer = plugins.trainer(backend)
        return trainer.describe(model_ref), backend
    for name, trainer in trainers.items():
        if trainer.claims(model_ref):
            return trainer.describe(model_ref), name
    raise InputError(
        f"unknown base model {model_ref!r}: not in the catalogue (`flywheel models`) and not a local model any "
        f"installed backend recognises ({', '.join(sorted(trainers)) or 'none'}); pass a .nemo file or a "
        "Hugging Face model directory, or --backend"
    )


_MODELS: dict[tuple[str, str | None], LoadedModel] = {}
_MODELS_LOCK = threading.Lock()


def load_model(model_ref: str, backend: str | None = None) -> LoadedModel:
    """Load a model once per process (transcription shards running in one worker share it)."""
    key = (model_ref, backend)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = Plugins().transcriber_for(model_ref, backend).load(model_ref)
        return _MODELS[key]


def release_models() -> None:
    """Drop cached models (end of a cycle) so a long-lived worker does not hold every model it ever loaded."""
    with _MODELS_LOCK:
        _MODELS.clear()


def transcribe_rows(
    manifest: Manifest,
    model_ref: str,
    *,
    batch_size: int = 16,
    backend: str | None = None,
    progress: ProgressFn | None = None,
    plugins: Plugins | None = None,
) -> list[str]:
    """Offline, batched transcription of every manifest row (in row order)."""
    model = (
        load_model(model_ref, backend)
        if plugins is None
        else plugins.transcriber_for(model_ref, backend).load(model_ref)
    )
    hyps = model.transcribe(manifest.audio_paths, batch_size=batch_size, progress=progress)
    if len(hyps) != len(manifest):
        raise RuntimeError(f"backend returned {len(hyps)} transcripts for {len(manifest)} rows")
    return hyps


def write_hyps(path: Path, manifest: Manifest, hyps: list[str]) -> Path:
    return fio.write_jsonl(
        path, [{"audio_filepath": a, "hyp": h} for a, h in zip(manifest.audio_paths, hyps, strict=True)]
    )


@dataclass
class EvalResult:
    report: ScoreReport
    paths: dict[str, Path]


def evaluate(
    manifest_path: str | Path,
    model_ref: str,
    out_dir: str | Path,
    *,
    config: FlywheelConfig | None = None,
    batch_size: int = 16,
    backend: str | None = None,
    cycle: int = 0,
    scope: str = "all rows",
    family: str | None = None,
    progress: ProgressFn | None = None,
) -> EvalResult:
    """`flywheel eval`: validate, transcribe with the right backend, score; writes offline_hyps.jsonl too."""
    cfg = config or FlywheelConfig()
    manifest = load_manifest(manifest_path, cfg)
    hyps = transcribe_rows(manifest, model_ref, batch_size=batch_size, backend=backend, progress=progress)
    out = Path(out_dir)
    hyp_path = write_hyps(out / OFFLINE_HYPS, manifest, hyps)
    report = score_manifest(manifest, hyps, config=cfg, model_name=model_ref, cycle=cycle, scope=scope, family=family)
    paths = write_score_outputs(report, out)
    paths["offline_hyps"] = hyp_path
    return EvalResult(report, paths)


def train(
    split_dir: str | Path,
    base: str,
    out_dir: str | Path,
    *,
    backend: str | None = None,
    method: str = "sft",
    hyperparameters: dict | None = None,
    config: FlywheelConfig | None = None,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    accelerator: str = "auto",
    progress: ProgressFn | None = None,
) -> TrainResult:
    """`flywheel train`: refuse known-bad requests before any compute, pre-flight the split, then fine-tune."""
    cfg = config or FlywheelConfig()
    plugins = Plugins()
    entry, backend_name = resolve_base(base, backend, plugins)
    check_sft_request(base, entry.decoder, method, entry)
    split = Path(split_dir)
    train_m, val_m = split / TRAIN_FILE, split / VALIDATION_FILE
    for p in (train_m, val_m):
        if not p.is_file():
            raise InputError(f"{p} not found: `flywheel train` needs a split directory (run `flywheel split` first)")
        load_manifest(p, cfg)  # NeMo silently drops rows with missing audio: refuse first
    request = TrainRequest(
        base=base,
        train_manifest=train_m,
        validation_manifest=val_m,
        out_dir=Path(out_dir),
        method=method,
        hyperparameters=dict(hyperparameters or {}),
        devices=devices,
        num_nodes=num_nodes,
        strategy=strategy,
        accelerator=accelerator,
        progress=progress,
    )
    return plugins.trainer(backend_name).train(request)
