"""The scoring steps: score transcripts into the scoring files and the typed record, and compare two scorings.

`flywheel score`, `flywheel compare`, `flywheel eval` (through `model_steps.evaluate`) and the cycle's baseline,
re-score and control scorings all run `score`.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostRef
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.flows.records import ScoreRecord
from asr_flywheel.flows.transcription import OFFLINE_HYPS, write_hyps
from asr_flywheel.manifest import Manifest
from asr_flywheel.metrics_record import SCOPE_ALL, Metrics, load_metrics
from asr_flywheel.score_files import load_per_sample, per_sample_rows, write_score_outputs
from asr_flywheel.scoring import ScoreReport, score_manifest


def compare(*, before_metrics: str | Path, after_metrics: str | Path, cfg: FlywheelConfig):
    """The paired cycle comparison (per category and the targeted pool) of two scored runs."""
    return compare_rows(before_metrics, load_metrics(after_metrics), load_per_sample(after_metrics), cfg)


def compare_rows(before_metrics: str | Path, after: Metrics, after_rows: list[dict], cfg: FlywheelConfig):
    """`compare` with the "after" side in memory (a scoring compares before its files are written)."""
    from asr_flywheel.compare import compare_samples

    b = load_metrics(before_metrics)
    return compare_samples(
        load_per_sample(before_metrics),
        after_rows,
        cfg.stats,
        before_label=f"cycle {b.cycle}",
        after_label=f"cycle {after.cycle}",
        pools={"targeted": cfg.decision_targets},
    )


@dataclass
class Scored:
    """A scoring's record, its in-memory report (per-row scores) and the files it wrote."""

    record: ScoreRecord
    report: ScoreReport
    paths: dict[str, Path]


def score(
    *,
    out: str | Path,
    manifest: Manifest,
    hyps: Sequence[str],
    model_ref: str,
    cfg: FlywheelConfig,
    cycle: int = 0,
    scope: str = SCOPE_ALL,
    family: str | None = None,
    before_metrics: str | Path | None = None,
    seen_terms: Collection[str] | None = None,
    train_audio: Collection[str] | None = None,
    seen_voices: Collection[str] | None = None,
    control: ControlCheck | None = None,
    boost: BoostRef | None = None,
) -> Scored:
    """Score transcripts; write offline_hyps.jsonl, the scoring files and the leaderboard (with the configured
    gate's sources, the cycle comparison when `before_metrics` is given, and the control-set section when
    `control` is). Returns the step record with the in-memory report (`flywheel eval` prints from it, parity
    compares its rows)."""
    from asr_flywheel.leaderboard import render_comparison, render_leaderboard

    out = Path(out)
    hyps = list(hyps)
    report = score_manifest(
        manifest,
        hyps,
        config=cfg,
        model_name=model_ref,
        cycle=cycle,
        scope=scope,
        family=family,
        seen_terms=seen_terms,
        train_audio=train_audio,
        seen_voices=seen_voices,
        boost=boost,
    )
    comparison = None
    if before_metrics:
        comparison = compare_rows(before_metrics, report.metrics, per_sample_rows(report), cfg)
    board = render_leaderboard(report.metrics, gate=cfg.gate, comparison=comparison, control=control)
    with fio.file_set() as files:  # all of a scoring's files or none (a full disk leaves no usable half)
        paths = {"offline_hyps": write_hyps(out / OFFLINE_HYPS, manifest, hyps, files=files)}
        if comparison is not None:
            paths["comparison"] = files.write_text(out / "comparison.md", render_comparison(comparison))
        paths["leaderboard"] = files.write_text(out / f"leaderboard_cycle{cycle}.md", board)
        paths |= write_score_outputs(report, out, leaderboard=False, files=files)
    record = ScoreRecord(
        cycle=cycle,
        scope=scope,
        model=model_ref,
        metrics=str(paths["metrics"]),
        leaderboard=str(paths["leaderboard"]),
        headline=report.metrics.headline,
        by_category=report.metrics.ker_by_entity_category,
        comparison=str(paths["comparison"]) if comparison is not None else None,
        files=[str(p) for p in paths.values()],
    )
    return Scored(record, report, paths)
