"""The decision table: cycle N+1 vs cycle N on targeted categories, held-out rows only (docs/design.md#decision).

With per-row data (per_sample.jsonl on both sides) the comparison is paired: cycle N's scores are restricted
to the rows cycle N+1 scored (the validation rows), so training rows never flatter the fine-tuned model, and
the KER delta gets a paired-bootstrap CI. From two metrics files alone (e.g. another tool's output) it is an
unpaired comparison of the aggregate targeted KER: labelled as such, with no CI and no significance claim.

Beyond the methodology: rows whose term never appeared in training ("unseen", `seen_term: false` in
per_sample.jsonl) are reported apart and do not decide; and a general-English control set guards against
forgetting: a candidate whose control WER rises more than `max_control_wer_rise` is REGRESSED, never kept.
Relative change = (after − before) / before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum

from asr_flywheel.compare import ALL, CategoryDelta, Comparison, compare_samples
from asr_flywheel.config import DecisionConfig, StatsConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.errors import InputError

#: A category whose base KER is at or below this is "already solved": no movement there is not a failure.
SATURATED_KER = 0.05
TARGETED = "targeted"
PAIRED = "paired by audio path (per-row data)"
UNPAIRED = "unpaired (no per-row data): no confidence interval"


class Decision(StrEnum):
    KEEP = "KEEP"
    GROW_MANIFEST = "GROW_MANIFEST"
    OVERFIT = "OVERFIT"
    NO_CHANGE = "NO_CHANGE"
    PLATEAU = "PLATEAU"
    INSUFFICIENT_EVIDENCE = "INSUFFICIENT_EVIDENCE"
    REGRESSED = "REGRESSED"
    #: The starting model decoding with the manifest's terms boosted met KEEP's bar on targeted held-out KER within
    #: the control guard: the same weights ship with the boost list, without training (docs/design.md#boosting).
    BOOST = "BOOST"


@dataclass
class DecisionResult:
    decision: Decision
    reason: str
    targets: tuple[str, ...]
    n_targeted: int
    ker_before: float
    ker_after: float
    relative_change: float | None
    ci_low: float | None
    ci_high: float | None
    significant: bool | None  # None: not assessed (unpaired comparison)
    per_category: list[dict]
    cycle: int
    manifest_family: str
    notes: list[str] = field(default_factory=list)
    comparison: str = PAIRED
    #: KER on held-out rows whose term was never trained on (reported, never decides); None when there are none.
    unseen: dict | None = None
    #: KER before → after on rows of seen terms spoken by voices never trained on (None: no such rows).
    unseen_voices: dict | None = None
    control: dict | None = None
    #: True when the "after" rows included training rows (allowed explicitly; the numbers are flattered).
    includes_training_rows: bool = False

    @property
    def keep(self) -> bool:
        """A candidate worth promoting: a fine-tune that kept, or a boost list that did."""
        return self.decision in (Decision.KEEP, Decision.BOOST)

    @property
    def paired(self) -> bool:
        return self.comparison == PAIRED

    @property
    def control_check(self) -> ControlCheck | None:
        return ControlCheck.from_dict(self.control) if self.control else None

    @classmethod
    def from_dict(cls, data: dict) -> DecisionResult:
        """Back from decision.json (`to_dict`); derived keys (`paired`) are recomputed, not read."""
        names = {f.name for f in fields(cls)}
        kept = {k: v for k, v in data.items() if k in names}
        return cls(**{**kept, "decision": Decision(data["decision"]), "targets": tuple(data["targets"])})

    def to_dict(self) -> dict:
        d = asdict(self)
        d["decision"] = str(self.decision)
        d["targets"] = list(self.targets)
        d["paired"] = self.paired
        return d


def classify(before: float, after: float, rel: float | None, cfg: DecisionConfig) -> tuple[Decision, str]:
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


def apply_plateau(
    decision: Decision, why: str, rel: float | None, cfg: DecisionConfig, history, cycle: int, family: str
) -> tuple[Decision, str]:
    prior = [h for h in (history or []) if h.get("manifest_family") == family and int(h.get("cycle", 0)) < cycle]
    if not (prior and _small_drop(rel, cfg) and decision in (Decision.NO_CHANGE, Decision.OVERFIT)):
        return decision, why
    last = prior[-1]
    last_rel = last.get("relative_change")
    if not _small_drop(last_rel, cfg):
        return decision, why
    last_txt = "no change measurable" if last_rel is None else f"{-last_rel:.1%} drop"
    return Decision.PLATEAU, (
        f"two consecutive cycles with < {cfg.plateau_drop:.0%} relative drop (cycle {last.get('cycle')}: "
        f"{last_txt}; now: {why}): stop tuning on this manifest"
    )


def apply_control_guard(decision: Decision, why: str, control: ControlCheck | None) -> tuple[Decision, str]:
    """The control-set guard overrides every KER outcome: a model that forgets general English is never kept."""
    if control is None or not control.regressed:
        return decision, why
    return Decision.REGRESSED, (
        f"{control.sentence()}: the candidate forgets general English and is not kept, whatever its KER "
        f"(KER alone would say {decision}: {why})"
    )


def _split_seen(after: list[dict]) -> tuple[list[dict], list[dict]]:
    unseen = [r for r in after if r.get("seen_term") is False]
    return ([r for r in after if r.get("seen_term") is not False], unseen) if unseen else (after, [])


def _unseen_voices(after: list[dict]) -> list[dict]:
    """Rows of seen terms spoken by voices no training row had: they isolate generalisation to a new speaker."""
    return [r for r in after if r.get("seen_voice") is False and r.get("seen_term") is not False]


def _unseen_summary(before: list[dict], unseen: list[dict], stats: StatsConfig, targets) -> dict | None:
    if not unseen:
        return None
    try:
        cmp = compare_samples(before, unseen, stats, pools={TARGETED: targets})
    except InputError:
        return None
    every = next(r for r in cmp.rows if r.category == ALL)
    tgt = cmp.pooled.get(TARGETED)
    return {"all": asdict(every), "targeted": asdict(tgt) if tgt else None}


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
    control: ControlCheck | None = None,
) -> tuple[DecisionResult, Comparison]:
    """Apply the decision table to per-row data (paired); returns the decision and the comparison on seen terms."""
    if not targets:
        raise InputError("the decision needs at least one targeted category")
    seen_after, unseen_after = _split_seen(after_samples)
    cmp = compare_samples(before_samples, seen_after, stats, pools={TARGETED: targets})
    tgt: CategoryDelta | None = cmp.pooled.get(TARGETED)
    if tgt is None:
        which = "rows of seen terms" if unseen_after else "rows"
        raise InputError(
            f"no held-out {which} in the targeted categories ({', '.join(targets)}) were scored in both cycles; "
            "nothing to decide on"
        )
    decision, why = classify(tgt.ker_before, tgt.ker_after, tgt.relative_change, cfg)
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
    unseen = _unseen_summary(before_samples, unseen_after, stats, targets)
    if unseen:
        u = unseen["all"]
        notes.append(
            f"Decided on seen terms only; unseen (held-out) terms: KER {u['ker_before']:.3f} → {u['ker_after']:.3f} "
            f"(n={u['n']}), reported, not decisive."
        )
    unseen_voices = _unseen_summary(before_samples, _unseen_voices(after_samples), stats, targets)
    if unseen_voices:
        v = unseen_voices["all"]
        notes.append(
            f"Unseen voices (seen terms, voices no training row had): KER {v['ker_before']:.3f} → "
            f"{v['ker_after']:.3f} (n={v['n']}), part of the decision's rows and reported apart."
        )
    decision, why = apply_plateau(decision, why, tgt.relative_change, cfg, history, cycle, manifest_family)
    significance = cfg.require_significance if require_significance is None else require_significance
    if significance and not tgt.significant and decision in (Decision.KEEP, Decision.GROW_MANIFEST, Decision.OVERFIT):
        why = f"{why}; but significance was required and the {pct}% CI of the delta includes zero"
        decision = Decision.INSUFFICIENT_EVIDENCE
    decision, why = apply_control_guard(decision, why, control)
    result = DecisionResult(
        decision=decision,
        reason=why[0].upper() + why[1:] + ".",
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
        unseen=unseen,
        unseen_voices=unseen_voices,
        control=control.to_dict() if control else None,
    )
    return result, cmp


def as_boosting(result: DecisionResult) -> DecisionResult:
    """The decision table's verdict on the starting model decoding with the boost list, as the boost lever reads it:
    KEEP's bar met (within the control guard, which the table has already applied) is BOOST; anything else says
    boosting alone is not enough, and the cycle fine-tunes."""
    if result.decision is Decision.KEEP:
        return replace(result, decision=Decision.BOOST, reason=f"Boost without training: {result.reason}")
    return replace(result, reason=f"Boosting alone is not enough ({result.decision}): {result.reason}")


def prefer_boosted(plain_keep: bool, plain_ker: float | None, boosted_keep: bool, boosted_ker: float | None) -> bool:
    """`[cycle] boost = "always"`: the fine-tuned candidate ships with the boost list when the table keeps it that
    way and it beats the plain candidate (kept or not) on targeted held-out KER."""
    if not boosted_keep:
        return False
    if not plain_keep or plain_ker is None:
        return True
    return boosted_ker is not None and boosted_ker < plain_ker


def _ci_text(lo: float | None, hi: float | None) -> str:
    return "no CI" if lo is None or hi is None else f"Δ CI {lo:+.3f} to {hi:+.3f}"


def render_decision(result: DecisionResult) -> str:
    """Markdown for the Prefect artifact and the cycle directory."""
    rel = "n/a" if result.relative_change is None else f"{result.relative_change:+.1%}"
    lines = [f"# Decision: **{result.decision}**", ""]
    if result.includes_training_rows:
        lines += ["> **WARNING: the after numbers include training rows; they are not held-out numbers.**", ""]
    lines += [
        result.reason,
        "",
        f"- Comparison: {result.comparison}",
        f"- Targeted categories: {', '.join(result.targets)} (held-out rows: {result.n_targeted})",
        f"- Targeted KER: {result.ker_before:.3f} → {result.ker_after:.3f} ({rel} relative; "
        f"{_ci_text(result.ci_low, result.ci_high)})",
    ]
    if result.unseen:
        u = result.unseen["all"]
        lines.append(f"- Unseen terms (all categories): KER {u['ker_before']:.3f} → {u['ker_after']:.3f} (n={u['n']})")
    if result.unseen_voices:
        v = result.unseen_voices["all"]
        lines.append(f"- Unseen voices (all categories): KER {v['ker_before']:.3f} → {v['ker_after']:.3f} (n={v['n']})")
    if result.control:
        c = result.control
        rise = "n/a" if c["rise"] is None else f"{c['rise']:+.1%}"
        verdict = "**REGRESSED**" if c["regressed"] else "ok"
        lines.append(
            f"- Control set WER: {c['wer_before']:.3f} → {c['wer_after']:.3f} ({rise} relative, n={c['n']}; "
            f"limit +{c['max_rise']:.0%}): {verdict}"
        )
    lines += [f"- {n}" for n in result.notes]
    lines += ["", "| category | n | KER before | KER after | relative |", "|---|---|---|---|---|"]
    for r in result.per_category:
        rc = "n/a" if r["relative_change"] is None else f"{r['relative_change']:+.1%}"
        lines.append(f"| {r['category']} | {r['n']} | {r['ker_before']:.3f} | {r['ker_after']:.3f} | {rc} |")
    return "\n".join(lines) + "\n"
