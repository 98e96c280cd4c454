"""The decision table: cycle N+1 vs cycle N on targeted categories, held-out rows only (SPEC §8).

The comparison is paired: cycle N's scores are restricted to the rows cycle N+1 scored (the validation
rows), so training rows never flatter the fine-tuned model. Relative change = (after − before) / before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from enum import StrEnum

from asr_flywheel.compare import ALL, Comparison, compare_samples
from asr_flywheel.config import DecisionConfig, StatsConfig
from asr_flywheel.errors import InputError

#: A category whose base KER is at or below this is "already solved": no movement there is not a failure.
SATURATED_KER = 0.05
TARGETED = "targeted"


class Decision(StrEnum):
    KEEP = "KEEP"
    GROW_MANIFEST = "GROW_MANIFEST"
    OVERFIT = "OVERFIT"
    NO_CHANGE = "NO_CHANGE"
    PLATEAU = "PLATEAU"
    INSUFFICIENT_EVIDENCE = "INSUFFICIENT_EVIDENCE"


@dataclass
class DecisionResult:
    decision: Decision
    reason: str
    targets: tuple[str, ...]
    n_targeted: int
    ker_before: float
    ker_after: float
    relative_change: float | None
    ci_low: float
    ci_high: float
    significant: bool
    per_category: list[dict]
    cycle: int
    manifest_family: str
    notes: list[str] = field(default_factory=list)

    @property
    def keep(self) -> bool:
        return self.decision is Decision.KEEP

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decision"] = str(self.decision)
        d["targets"] = list(self.targets)
        return d


def _classify(before: float, after: float, rel: float | None, cfg: DecisionConfig) -> tuple[Decision, str]:
    if rel is not None:
        rel = round(rel, 9)  # (0.4 - 0.5) / 0.5 is -0.19999999999999996 in floats: table edges must hold
    if rel is None:  # before == 0
        if after == 0:
            return Decision.NO_CHANGE, "targeted KER was already 0 in the base and stayed 0"
        return Decision.OVERFIT, f"targeted KER rose from 0 to {after:.3f}"
    drop = -rel
    if drop >= cfg.keep_drop:
        return (
            Decision.KEEP,
            f"targeted KER dropped {drop:.1%} relative ({before:.3f} → {after:.3f}), ≥ {cfg.keep_drop:.0%}",
        )
    if drop > cfg.grow_drop:
        return Decision.GROW_MANIFEST, (
            f"targeted KER dropped {drop:.1%} relative ({before:.3f} → {after:.3f}): more than {cfg.grow_drop:.0%} but "
            f"less than {cfg.keep_drop:.0%}. Signal density beats LR sweeps: grow the manifest, do not tune harder"
        )
    if rel >= cfg.overfit_rise:
        return Decision.OVERFIT, (
            f"targeted KER rose {rel:.1%} relative ({before:.3f} → {after:.3f}), ≥ {cfg.overfit_rise:.0%}: "
            "overfit on a small manifest; grow it before retraining"
        )
    return (
        Decision.NO_CHANGE,
        f"targeted KER moved {rel:+.1%} relative ({before:.3f} → {after:.3f}), within ±{cfg.grow_drop:.0%}",
    )


def _small_drop(rel: float | None, cfg: DecisionConfig) -> bool:
    return rel is None or -round(rel, 9) < cfg.plateau_drop


def decide(
    before_samples: list[dict],
    after_samples: list[dict],
    cfg: DecisionConfig,
    stats: StatsConfig,
    *,
    targets: tuple[str, ...],
    history: list[dict] | None = None,
    cycle: int = 0,
    manifest_family: str = "",
    require_significance: bool | None = None,
) -> tuple[DecisionResult, Comparison]:
    """Apply the decision table; returns the decision and the paired comparison it was based on."""
    if not targets:
        raise InputError("the decision needs at least one targeted category")
    cmp = compare_samples(before_samples, after_samples, stats, pools={TARGETED: targets})
    tgt = cmp.pooled.get(TARGETED)
    if tgt is None:
        raise InputError(
            f"no held-out rows in the targeted categories ({', '.join(targets)}) were scored in both cycles; "
            "nothing to decide on"
        )
    decision, why = _classify(tgt.ker_before, tgt.ker_after, tgt.relative_change, cfg)
    notes: list[str] = []
    pct = round(stats.confidence * 100)
    if not tgt.significant and tgt.delta != 0:  # an observed change the rows cannot confirm
        notes.append(
            f"The {tgt.n} held-out targeted row(s) are too few for the {pct}% CI of the KER delta "
            f"({tgt.ci_low:+.3f} to {tgt.ci_high:+.3f}) to exclude zero."
        )
    per_cat = [asdict(r) for r in cmp.rows if r.category != ALL]
    saturated = [r.category for r in cmp.rows if r.category != ALL and r.ker_before <= SATURATED_KER]
    if decision is Decision.NO_CHANGE and saturated:
        notes.append(f"Already at ~0 KER in the base (not failures): {', '.join(saturated)}.")

    prior = [
        h for h in (history or []) if h.get("manifest_family") == manifest_family and int(h.get("cycle", 0)) < cycle
    ]
    if prior and _small_drop(tgt.relative_change, cfg) and decision in (Decision.NO_CHANGE, Decision.OVERFIT):
        last = prior[-1]
        last_rel = last.get("relative_change")
        if _small_drop(last_rel, cfg):
            last_txt = "no change measurable" if last_rel is None else f"{-last_rel:.1%} drop"
            why = (
                f"two consecutive cycles with < {cfg.plateau_drop:.0%} relative drop (cycle {last.get('cycle')}: "
                f"{last_txt}; now: {why}): stop tuning on this manifest"
            )
            decision = Decision.PLATEAU

    significance = cfg.require_significance if require_significance is None else require_significance
    if significance and not tgt.significant and decision in (Decision.KEEP, Decision.GROW_MANIFEST, Decision.OVERFIT):
        why = f"{why}; but significance was required and the {pct}% CI of the delta includes zero"
        decision = Decision.INSUFFICIENT_EVIDENCE

    reason = why[0].upper() + why[1:] + "."
    result = DecisionResult(
        decision=decision,
        reason=reason,
        targets=tuple(targets),
        n_targeted=tgt.n,
        ker_before=tgt.ker_before,
        ker_after=tgt.ker_after,
        relative_change=tgt.relative_change,
        ci_low=tgt.ci_low,
        ci_high=tgt.ci_high,
        significant=tgt.significant,
        per_category=per_cat,
        cycle=cycle,
        manifest_family=manifest_family,
        notes=notes,
    )
    return result, cmp


def render_decision(result: DecisionResult) -> str:
    """Markdown for the Prefect artifact and the cycle directory."""
    rel = "n/a" if result.relative_change is None else f"{result.relative_change:+.1%}"
    lines = [
        f"# Decision: **{result.decision}**",
        "",
        result.reason,
        "",
        f"- Targeted categories: {', '.join(result.targets)} (held-out rows: {result.n_targeted})",
        f"- Targeted KER: {result.ker_before:.3f} → {result.ker_after:.3f} ({rel} relative; Δ CI "
        f"{result.ci_low:+.3f} to {result.ci_high:+.3f})",
    ]
    lines += [f"- {n}" for n in result.notes]
    lines += ["", "| category | n | KER before | KER after | relative |", "|---|---|---|---|---|"]
    for r in result.per_category:
        rc = "n/a" if r["relative_change"] is None else f"{r['relative_change']:+.1%}"
        lines.append(f"| {r['category']} | {r['n']} | {r['ker_before']:.3f} | {r['ker_after']:.3f} | {rc} |")
    return "\n".join(lines) + "\n"
