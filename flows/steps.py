"""The cycle's steps as plain functions: the CLI verbs call them, the Prefect flow wraps them as tasks.

This module is the one place to find every step: scoring steps live in `score_steps`, model steps in
`model_steps`, release steps in `release_steps`, and the gate, split and decision here.

One path: `flywheel score/gate/split/decide/compare/eval/train` and the flow's tasks run these same functions,
so a verb's files are exactly the files the same step writes inside a cycle. Each step composes plugins
(backends) with the pure core, holds no domain rule of its own, takes keyword arguments and returns a typed
record (`flows.records`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.cycle import ManifestRef
from asr_flywheel.flows.model_steps import (
    EvalResult,
    TrainSettings,
    evaluate,
    require_model,
    train,
    train_record,
    train_settings,
)
from asr_flywheel.flows.records import DecisionRecord, GateRecord, SplitRecord
from asr_flywheel.flows.release_steps import (
    CHART_FILE,
    deploy,
    promote,
    register,
    review,
    trained_on,
    update_chart,
)
from asr_flywheel.flows.score_steps import compare, score
from asr_flywheel.flows.transcription import (
    OFFLINE_HYPS,
    load_model,
    release_models,
    transcribe_rows,
    write_hyps,
)
from asr_flywheel.validation import ValidationReport, load_manifest

__all__ = [
    "CHART_FILE",
    "OFFLINE_HYPS",
    "EvalResult",
    "ManifestRef",
    "TrainSettings",
    "compare",
    "decide",
    "deploy",
    "evaluate",
    "gate",
    "load_model",
    "promote",
    "register",
    "release_models",
    "require_model",
    "review",
    "score",
    "split",
    "train",
    "train_record",
    "train_settings",
    "trained_on",
    "transcribe_rows",
    "update_chart",
    "write_hyps",
]


def gate(
    *,
    metrics_path: str | Path,
    out_dir: str | Path,
    cfg: FlywheelConfig,
    history: list[dict],
    first_eval: bool | None = None,
    priority: tuple[str, ...] | None = None,
    force_reason: str | None = None,
) -> GateRecord:
    """Apply the fixed gate to a scored baseline; write gate.json and gate.md. `first_eval` defaults to what the
    history says (first evaluation of this manifest family when no earlier gate record has it)."""
    from asr_flywheel.gate import evaluate_gate, is_first_eval, render_gate
    from asr_flywheel.metrics_record import load_metrics
    from asr_flywheel.plugins.catalogue import sft_refusal
    from asr_flywheel.plugins.manager import Plugins

    metrics = load_metrics(metrics_path)  # refuses wrong types in the fields the gate and decision read
    first = is_first_eval(history, metrics) if first_eval is None else first_eval
    refusal = sft_refusal(Plugins().base_model(metrics.model))
    result = evaluate_gate(metrics, cfg.gate, first_eval=first, priority=priority, evaluate_only=refusal)
    if force_reason is not None:
        result = result.force(force_reason)
    out = Path(out_dir)
    gate_json = fio.write_json(out / "gate.json", result.to_dict())
    gate_md = fio.write_text(out / "gate.md", render_gate(result))
    return GateRecord(
        outcome=str(result.outcome),
        reason=result.reason,
        proceed=result.proceed,
        forced=result.forced,
        priority_ker=result.priority_ker,
        priority_n=result.priority_n,
        rows=result.rows,
        first_eval=result.first_eval,
        gate_json=str(gate_json),
        gate_md=str(gate_md),
        files=[str(gate_json), str(gate_md)],
    )


def split(
    *, report: ValidationReport, out_dir: str | Path, cfg: FlywheelConfig, priority: tuple[str, ...] | None = None
) -> SplitRecord:
    """Term-aware split of a validated manifest into train.jsonl / validation.jsonl (+ split.json)."""
    from asr_flywheel.split import split_manifest, write_split

    manifest = report.manifest
    prio = priority or cfg.gate.priority
    result = split_manifest(manifest, cfg.split, prio, min_priority_rows=cfg.gate.min_priority_rows)
    durations = {a: i.duration for a, i in report.audio.items()}
    paths = write_split(manifest, result, cfg.split, out_dir, durations)
    val = load_manifest(paths["validation"], cfg, check_audio=False)
    return SplitRecord(
        dir=str(out_dir),
        train=str(paths["train"]),
        validation=str(paths["validation"]),
        validation_version=val.version,
        train_rows=len(result.train),
        validation_rows=len(result.validation),
        counts=result.counts,
        warnings=list(result.warnings),
        files=[str(p) for p in paths.values()],
    )


def decide(
    *,
    before_metrics: str | Path,
    after_metrics: str | Path,
    out_dir: str | Path,
    cfg: FlywheelConfig,
    history: list[dict],
    targets: tuple[str, ...] | None = None,
    require_significance: bool | None = None,
    control: ControlCheck | None = None,
    boosting: bool = False,
    notes: Sequence[str] = (),
) -> DecisionRecord:
    """Apply the decision table to cycle N (before) vs N+1 (after, held-out rows); write decision.json/.md.
    The cycle number and manifest family are the ones recorded in the after metrics; `control` (the control-set
    guard) makes a candidate that forgets general English REGRESSED. With `boosting`, "after" is the starting model
    decoding with the boost list, and KEEP's bar met reads BOOST (`decision.as_boosting`); `notes` are added to the
    decision (e.g. what boosting alone reached, quoted in the fine-tune's decision)."""
    from asr_flywheel.decision import as_boosting, render_decision
    from asr_flywheel.decision_files import decide_files

    result = decide_files(
        before_metrics,
        after_metrics,
        cfg,
        targets=targets,
        history=history,
        require_significance=require_significance,
        control=control,
    )
    if boosting:
        result = as_boosting(result)
    result.notes.extend(notes)
    out = Path(out_dir)
    path = fio.write_json(out / "decision.json", result.to_dict())
    md = fio.write_text(out / "decision.md", render_decision(result))
    return DecisionRecord(
        decision=str(result.decision),
        keep=result.keep,
        reason=result.reason,
        relative_change=result.relative_change,
        per_category=list(result.per_category),
        decision_json=str(path),
        decision_md=str(md),
        control=result.control,
        unseen=result.unseen,
        unseen_voices=result.unseen_voices,
        ker_before=result.ker_before,
        ker_after=result.ker_after,
        files=[str(path), str(md)],
    )
