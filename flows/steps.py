"""The cycle's steps as plain functions: the CLI verbs call them, the Prefect flow wraps them as tasks.

One path: `flywheel score/gate/split/decide/compare/eval/train` and the flow's tasks run these same functions,
so a verb's files are exactly the files the same step writes inside a cycle. Each step composes plugins
(backends) with the pure core, holds no domain rule of its own, takes keyword arguments and returns a typed
record (`flows.records`).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.cycle import ManifestRef
from asr_flywheel.flows.records import (
    DecisionRecord,
    GateRecord,
    ScoreRecord,
    SplitRecord,
)
from asr_flywheel.flows.transcription import (
    OFFLINE_HYPS,
    load_model,
    release_models,
    transcribe_rows,
    write_hyps,
)
from asr_flywheel.manifest import Manifest
from asr_flywheel.scoring import ScoreReport, per_sample_rows, score_manifest, write_score_outputs
from asr_flywheel.validation import ValidationReport, load_manifest

__all__ = [
    "CHART_FILE",
    "OFFLINE_HYPS",
    "EvalResult",
    "ManifestRef",
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
    "trained_on",
    "transcribe_rows",
    "update_chart",
    "write_hyps",
]


def compare(*, before_metrics: str | Path, after_metrics: str | Path, cfg: FlywheelConfig):
    """The paired cycle comparison (per category and the targeted pool) of two scored runs."""
    from asr_flywheel.scoring import load_metrics, load_per_sample

    return compare_rows(before_metrics, load_metrics(after_metrics), load_per_sample(after_metrics), cfg)


def compare_rows(before_metrics: str | Path, after: dict, after_rows: list[dict], cfg: FlywheelConfig):
    """`compare` with the "after" side in memory (a scoring compares before its files are written)."""
    from asr_flywheel.compare import compare_samples
    from asr_flywheel.scoring import load_metrics, load_per_sample

    b = load_metrics(before_metrics)
    return compare_samples(
        load_per_sample(before_metrics),
        after_rows,
        cfg.stats,
        before_label=f"cycle {b.get('cycle', 'N')}",
        after_label=f"cycle {after.get('cycle', 'N+1')}",
        pools={"targeted": cfg.decision_targets},
    )


def score(
    *,
    out: str | Path,
    manifest: Manifest,
    hyps: Sequence[str],
    model_ref: str,
    cfg: FlywheelConfig,
    cycle: int = 0,
    scope: str = "all rows",
    family: str | None = None,
    before_metrics: str | Path | None = None,
    seen_terms: Collection[str] | None = None,
    train_audio: Collection[str] | None = None,
    seen_voices: Collection[str] | None = None,
    control: ControlCheck | None = None,
) -> ScoreRecord:
    """Score transcripts; write offline_hyps.jsonl, the scoring files and the leaderboard (with the configured
    gate's sources, the cycle comparison when `before_metrics` is given, and the control-set section when
    `control` is)."""
    return _score(**locals())[0]


def _score(**kw) -> tuple[ScoreRecord, ScoreReport, dict[str, Path]]:
    from asr_flywheel.leaderboard import render_comparison, render_leaderboard

    out, manifest, hyps, cfg = Path(kw["out"]), kw["manifest"], list(kw["hyps"]), kw["cfg"]
    extra = {k: kw[k] for k in ("seen_terms", "train_audio", "seen_voices") if kw.get(k) is not None}
    report = score_manifest(
        manifest,
        hyps,
        config=cfg,
        model_name=kw["model_ref"],
        cycle=kw["cycle"],
        scope=kw["scope"],
        family=kw["family"],
        **extra,
    )
    comparison = None
    if kw.get("before_metrics"):
        comparison = compare_rows(kw["before_metrics"], report.metrics, per_sample_rows(report), cfg)
    board = render_leaderboard(report.metrics, gate=cfg.gate, comparison=comparison, control=kw.get("control"))
    with fio.file_set() as files:  # all of a scoring's files or none (a full disk leaves no usable half)
        paths = {"offline_hyps": write_hyps(out / OFFLINE_HYPS, manifest, hyps, files=files)}
        if comparison is not None:
            paths["comparison"] = files.write_text(out / "comparison.md", render_comparison(comparison))
        paths["leaderboard"] = files.write_text(out / f"leaderboard_cycle{kw['cycle']}.md", board)
        paths |= write_score_outputs(report, out, leaderboard=False, files=files)
    m = report.metrics
    record = ScoreRecord(
        cycle=kw["cycle"],
        scope=kw["scope"],
        model=kw["model_ref"],
        metrics=str(paths["metrics"]),
        leaderboard=str(paths["leaderboard"]),
        n=m["n"],
        wer=m["wer"],
        cer=m["cer"],
        ker=m["ker"],
        ker_n=m.get("ker_n", 0),
        ser=m["ser"],
        by_category=m["ker_by_entity_category"],
        comparison=str(paths["comparison"]) if comparison is not None else None,
        files=[str(p) for p in paths.values()],
    )
    return record, report, paths


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
    from asr_flywheel.plugins.catalogue import sft_refusal
    from asr_flywheel.plugins.manager import Plugins
    from asr_flywheel.scoring import load_metrics

    metrics = load_metrics(metrics_path)  # refuses wrong types in the fields the gate and decision read
    first = is_first_eval(history, metrics) if first_eval is None else first_eval
    refusal = sft_refusal(Plugins().base_model(str(metrics.get("model") or "")))
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
) -> DecisionRecord:
    """Apply the decision table to cycle N (before) vs N+1 (after, held-out rows); write decision.json/.md.
    The cycle number and manifest family are the ones recorded in the after metrics; `control` (the control-set
    guard) makes a candidate that forgets general English REGRESSED."""
    from asr_flywheel.decision import render_decision
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
        files=[str(path), str(md)],
    )


# The model and release steps live in their own modules; `steps` is the one place to find every step.
from asr_flywheel.flows.model_steps import EvalResult, evaluate, require_model, train, train_record  # noqa: E402
from asr_flywheel.flows.release_steps import (  # noqa: E402
    CHART_FILE,
    deploy,
    promote,
    register,
    review,
    trained_on,
    update_chart,
)
