"""The model steps: `flywheel eval` (transcribe + the score step) and `flywheel train` (pre-flight + a trainer).

Both check their output location and model before any compute is spent.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr_flywheel.boost import FROM_MANIFEST, BoostList, boost_list, manifest_terms, read_boost_file
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import require_writable_dir
from asr_flywheel.errors import InputError
from asr_flywheel.flows.records import TrainRecord
from asr_flywheel.flows.score_steps import Scored, score
from asr_flywheel.flows.transcription import check_boost, transcribe_rows
from asr_flywheel.manifest import Manifest
from asr_flywheel.metrics_record import SCOPE_ALL
from asr_flywheel.plugins.catalogue import check_sft_request
from asr_flywheel.plugins.contracts import ProgressFn, TrainRequest, TrainResult
from asr_flywheel.plugins.manager import Plugins, check_hyperparameters
from asr_flywheel.replay import mix_replay
from asr_flywheel.split import TRAIN_FILE, VALIDATION_FILE
from asr_flywheel.validation import load_manifest


def require_model(model_ref: str, plugins: Plugins | None = None) -> None:
    """A model that is not a catalogue name is a file or directory, and must exist: say so before loading."""
    plugins = plugins or Plugins()
    if "://" in model_ref:  # a served endpoint (triton://, riva://): its transcriber checks it is reachable
        return
    if plugins.base_model(model_ref) is None and not Path(model_ref).exists():
        # a bare name is for the backends to resolve; a path must exist
        looks_local = model_ref.endswith(".nemo") or model_ref.startswith((".", "/", "~"))
        if looks_local:
            raise InputError(f"model file not found: {model_ref}")


#: What `flywheel eval` returns: a scoring's record, report and files.
EvalResult = Scored


def evaluate(
    manifest_path: str | Path,
    model_ref: str,
    out_dir: str | Path,
    *,
    config: FlywheelConfig | None = None,
    batch_size: int = 16,
    backend: str | None = None,
    cycle: int = 0,
    scope: str = SCOPE_ALL,
    family: str | None = None,
    progress: ProgressFn | None = None,
    boost: str | None = None,
) -> EvalResult:
    """`flywheel eval`: validate, transcribe with the right backend, then the `score` step. `boost` is a phrase
    file (one a line) or "manifest" (its terms): the model decodes biased toward them, with `[boost]` weights."""
    cfg = config or FlywheelConfig()
    require_writable_dir(out_dir)
    require_model(model_ref)
    manifest = load_manifest(manifest_path, cfg)
    boosted = resolve_boost(boost, manifest, cfg)
    check_boost(model_ref, backend, boosted)  # a transcriber that cannot boost is refused before any work
    hyps = transcribe_rows(
        manifest, model_ref, batch_size=batch_size, backend=backend, progress=progress, boost=boosted
    )
    return score(
        out=out_dir,
        manifest=manifest,
        hyps=hyps,
        model_ref=model_ref,
        cfg=cfg,
        cycle=cycle,
        scope=scope,
        family=family,
        boost=boosted.ref if boosted else None,
    )


def resolve_boost(spec: str | None, manifest: Manifest, cfg: FlywheelConfig) -> BoostList | None:
    """`--boost`: None (plain decoding), "manifest" (the manifest's own terms) or a phrase file; `[boost]` weights."""
    if not spec:
        return None
    if spec == FROM_MANIFEST:
        return boost_list(manifest_terms(manifest.column("term")), cfg.boost, f"{FROM_MANIFEST} {manifest.path}")
    return read_boost_file(spec, cfg.boost)


@dataclass(frozen=True)
class TrainSettings:
    """How one fine-tune runs, resolved once from (flags, config, catalogue) and checked before any compute."""

    #: The trainer backend that trains the base (its own, a catalogue entry's, or the one claiming the file).
    backend: str
    #: `[hyperparameters]` of the config, then the flags, checked by that trainer.
    hyperparameters: dict
    devices: int | str
    num_nodes: int
    strategy: str


def train_settings(
    cfg: FlywheelConfig,
    base: str,
    *,
    backend: str | None = None,
    method: str = "sft",
    flags: dict | None = None,
    devices: str | None = None,
    num_nodes: int | None = None,
    strategy: str | None = None,
) -> TrainSettings:
    """THE resolution of a training run's settings, for `flywheel train` and the cycle's train task alike: the
    flags win over `[cycle]`/`[hyperparameters]`; an evaluate-only base, a missing model, an unknown backend or a
    bad hyperparameter is an `InputError` here, before any compute."""
    plugins = Plugins()
    require_model(base, plugins)  # "file not found" for a missing .nemo, before asking backends what it is
    entry, backend_name = plugins.resolve_base(base, backend or cfg.cycle.backend or None)
    check_sft_request(base, entry.decoder, method, entry)  # evaluate-only bases: the catalogue's reason
    hyperparameters = check_hyperparameters(cfg, backend_name, flags, plugins=plugins)
    chosen = devices or cfg.cycle.devices
    return TrainSettings(
        backend=backend_name,
        hyperparameters=hyperparameters,
        devices=int(chosen) if chosen.isdigit() else chosen,
        num_nodes=num_nodes or cfg.cycle.num_nodes,
        strategy=strategy or cfg.cycle.strategy,
    )


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
    """`flywheel train`: refuse known-bad requests before any compute, mix replay rows into the split's training
    rows (`[train] replay_*`; never control rows), pre-flight the split, then fine-tune."""
    cfg = config or FlywheelConfig()
    require_writable_dir(out_dir, "output directory")
    plugins = Plugins()
    require_model(base, plugins)
    entry, backend_name = plugins.resolve_base(base, backend)
    check_sft_request(base, entry.decoder, method, entry)
    split_path = Path(split_dir)
    train_m, val_m = split_path / TRAIN_FILE, split_path / VALIDATION_FILE
    for p in (train_m, val_m):
        if not p.is_file():
            raise InputError(f"{p} not found: `flywheel train` needs a split directory (run `flywheel split` first)")
    # Replay rows are mixed in (or a stale mix undone) before the rows are checked, so the check sees what trains.
    mix_replay(
        split_path,
        cfg.train.replay_manifest or None,
        cfg.train.replay_fraction,
        cfg.train.replay_seed,
        control_manifest=cfg.cycle.control_manifest or None,
        config=cfg,
    )
    for p in (train_m, val_m):
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
        base_model=entry,
    )
    return plugins.trainer(backend_name).train(request)


def train_record(result: TrainResult, backend: str | None) -> TrainRecord:
    info = result.run_info
    return TrainRecord(
        model=str(result.model_path),
        run_info=str(result.run_info_path),
        backend=info.get("backend", backend or ""),
        decoder=(info.get("architecture") or {}).get("decoder"),
        files=[str(result.model_path), str(result.run_info_path)],
    )
