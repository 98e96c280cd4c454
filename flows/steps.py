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
from asr_flywheel.plugins.catalogue import check_sft_request
from asr_flywheel.plugins.contracts import BaseModel, LoadedModel, ProgressFn, TrainRequest, TrainResult
from asr_flywheel.plugins.manager import Plugins
from asr_flywheel.scoring import ScoreReport, score_manifest, write_score_outputs
from asr_flywheel.split import TRAIN_FILE, VALIDATION_FILE
from asr_flywheel.validation import ValidationReport, load_manifest, load_manifest_version

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


_MODELS: dict[tuple[str, str | None], _SerialModel] = {}
_MODELS_LOCK = threading.Lock()


class _SerialModel:
    """One loaded model shared by the shards of a worker process, used by one thread at a time.

    Backends are not thread-safe (NeMo's transcribe freezes and unfreezes modules) and torch already spreads
    one call over every core, so shards parallelise across processes (Dask/Ray workers), not threads.
    """

    def __init__(self, model: LoadedModel):
        self._model = model
        self._lock = threading.Lock()
        self.name, self.decoder = model.name, model.decoder

    def transcribe(self, audio_paths, *, batch_size: int = 16, progress: ProgressFn | None = None) -> list[str]:
        with self._lock:
            return self._model.transcribe(audio_paths, batch_size=batch_size, progress=progress)


def load_model(model_ref: str, backend: str | None = None) -> LoadedModel:
    """Load a model once per process (transcription shards running in one worker share it)."""
    key = (model_ref, backend)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _SerialModel(Plugins().transcriber_for(model_ref, backend).load(model_ref))
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


# --- the cycle's steps (files in the cycle directory; each returns a JSON-able record) -----------------------


@dataclass(frozen=True)
class ManifestRef:
    """A manifest version: path + row count + content hash. Every step re-reads exactly these rows."""

    path: str
    version: str
    rows: int

    def report(self, cfg: FlywheelConfig, *, check_audio: bool = True) -> ValidationReport:
        """This version's rows (validated) and, when checked, their audio headers."""
        return load_manifest_version(self.path, self.version, self.rows, cfg, check_audio=check_audio)

    def load(self, cfg: FlywheelConfig, *, check_audio: bool = False) -> Manifest:
        return self.report(cfg, check_audio=check_audio).manifest


def score_rows_to_dir(
    out: Path,
    manifest: Manifest,
    hyps: list[str],
    model_ref: str,
    cfg: FlywheelConfig,
    number: int,
    scope: str,
    family: str,
    before_metrics: str | None = None,
) -> dict:
    """Score transcripts and write the scoring files + leaderboard (with the cycle comparison when `before`)."""
    from asr_flywheel.compare import compare_samples
    from asr_flywheel.leaderboard import render_comparison, render_leaderboard
    from asr_flywheel.scoring import load_per_sample

    hyp_path = write_hyps(out / OFFLINE_HYPS, manifest, hyps)
    report = score_manifest(manifest, hyps, config=cfg, model_name=model_ref, cycle=number, scope=scope, family=family)
    paths = write_score_outputs(report, out, leaderboard=False)
    comparison = None
    if before_metrics:
        comparison = compare_samples(
            load_per_sample(before_metrics),
            load_per_sample(paths["metrics"]),
            cfg.stats,
            before_label=f"cycle {number - 1}",
            after_label=f"cycle {number}",
            pools={"targeted": cfg.decision_targets},
        )
    board_md = render_leaderboard(report.metrics, gate=cfg.gate, comparison=comparison)
    board = fio.write_text(out / f"leaderboard_cycle{number}.md", board_md)
    return {
        "metrics": str(paths["metrics"]),
        "leaderboard": str(board),
        "ker": report.metrics["ker"],
        "n": report.metrics["n"],
        "leaderboard_md": board_md,
        "comparison_md": render_comparison(comparison) if comparison else None,
        "by_category": report.metrics["ker_by_entity_category"],
        "files": [str(p) for p in (*paths.values(), board, hyp_path)],
    }


def gate_cycle(
    cycle_path: Path, cycles_dir: Path, metrics_path: str, cfg: FlywheelConfig, force_reason: str | None
) -> dict:
    from asr_flywheel.gate import evaluate_gate, history_records, is_first_eval, render_gate
    from asr_flywheel.scoring import load_metrics

    metrics = load_metrics(metrics_path)
    history = [h for h in history_records(cycles_dir, "gate.json") if Path(h["_path"]).parent != cycle_path]
    result = evaluate_gate(metrics, cfg.gate, first_eval=is_first_eval(history, metrics))
    if force_reason:
        result = result.force(force_reason)
    gate_json = fio.write_json(cycle_path / "gate.json", result.to_dict())
    md = fio.write_text(cycle_path / "gate.md", render_gate(result))
    return {**result.to_dict(), "markdown": md.read_text(), "files": [str(gate_json), str(md)]}


def split_cycle(split_dir: Path, ref: ManifestRef, cfg: FlywheelConfig) -> dict:
    from asr_flywheel.split import split_manifest, write_split

    report = ref.report(cfg)
    manifest = report.manifest
    result = split_manifest(manifest, cfg.split, cfg.gate.priority, min_priority_rows=cfg.gate.min_priority_rows)
    paths = write_split(manifest, result, cfg.split, split_dir, {a: i.duration for a, i in report.audio.items()})
    val = load_manifest(paths["validation"], cfg, check_audio=False)
    return {
        "dir": str(split_dir),
        "validation": str(paths["validation"]),
        "ref": {"path": str(paths["validation"]), "version": val.version, "rows": len(val)},
        "train_rows": len(result.train),
        "validation_rows": len(result.validation),
        "warnings": result.warnings,
        "files": [str(p) for p in paths.values()],
    }


def decide_cycle(
    cycle_path: Path, cycles_dir: Path, number: int, before: str, after: str, cfg: FlywheelConfig, family: str
) -> dict:
    from asr_flywheel.decision import decide, render_decision
    from asr_flywheel.gate import history_records
    from asr_flywheel.scoring import load_per_sample

    history = [h for h in history_records(cycles_dir, "decision.json") if Path(h["_path"]).parent != cycle_path]
    result, _ = decide(
        load_per_sample(before),
        load_per_sample(after),
        cfg.decision,
        cfg.stats,
        targets=cfg.decision_targets,
        history=history,
        cycle=number,
        manifest_family=family,
    )
    path = fio.write_json(cycle_path / "decision.json", result.to_dict())
    md = fio.write_text(cycle_path / "decision.md", render_decision(result))
    return {
        "decision": str(result.decision),
        "keep": result.keep,
        "reason": result.reason,
        "relative_change": result.relative_change,
        "per_category": result.per_category,
        "markdown": md.read_text(),
        "files": [str(path), str(md)],
    }


def register_cycle(
    registry_dir: Path,
    cycle_number: int,
    trained: dict,
    base: str,
    backend: str | None,
    manifest_version: str,
    family: str,
    decision: dict,
    parent: str | None,
) -> dict:
    from asr_flywheel.registry import Registry

    run_info = fio.read_json(trained["run_info"])
    reg = Registry(registry_dir)
    rec = reg.register(
        path=trained["model"],
        backend=run_info.get("backend", backend or ""),
        base_model=base,
        parent=parent,
        manifest_version=manifest_version,
        manifest_family=family,
        cycle=cycle_number,
        hyperparameters=run_info.get("hyperparameters", {}),
        metrics=run_info.get("metrics", {}),
        decision=decision["decision"],
        architecture=(run_info.get("architecture") or {}).get("decoder"),
    )
    if decision["keep"]:
        reg.promote(rec.model_id, f"KEEP in cycle {cycle_number}: {decision['reason']}")
    return {"model_id": rec.model_id, "champion": decision["keep"], "files": [str(reg.path)]}
