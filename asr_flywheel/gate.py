"""The fixed gate: is fine-tuning worth GPU time for this baseline? (docs/design.md#gate)

Rules are checked in table order and the first that matches decides. The reason always names the
numbers that decided it, so an ops team reading the Prefect artifact can check the call by hand.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from asr_flywheel import io as fio
from asr_flywheel.config import GateConfig
from asr_flywheel.errors import InputError
from asr_flywheel.metrics_record import Metrics, as_metrics, pooled_ker


class GateOutcome(StrEnum):
    FINETUNE = "FINETUNE"
    GROW_MANIFEST = "GROW_MANIFEST"
    FIX_PRONUNCIATION = "FIX_PRONUNCIATION"
    HARDEN_EVAL = "HARDEN_EVAL"
    #: The rules would fine-tune, but the model's catalogue entry refuses SFT: score it, never train it.
    EVALUATE_ONLY = "EVALUATE_ONLY"


@dataclass(frozen=True)
class GateResult:
    outcome: GateOutcome
    reason: str
    rows: int
    priority: tuple[str, ...]
    priority_ker: float | None
    priority_n: int
    priority_counts: dict[str, int]
    first_eval: bool
    manifest_family: str
    manifest_version: str
    cycle: int
    forced: bool = False
    force_reason: str | None = None

    @property
    def proceed(self) -> bool:
        """True when the cycle should fine-tune: the gate said so, or a human forced it with a reason."""
        return self.outcome is GateOutcome.FINETUNE or self.forced

    def to_dict(self) -> dict:
        d = asdict(self)
        d["outcome"] = str(self.outcome)
        d["priority"] = list(self.priority)
        d["proceed"] = self.proceed
        return d

    def force(self, reason: str) -> GateResult:
        """Record a human override past a failed gate. The computed outcome is kept, not rewritten."""
        if not reason or not reason.strip():
            raise InputError("forcing fine-tuning past the gate needs a reason (it is recorded in the cycle record)")
        if self.outcome is GateOutcome.EVALUATE_ONLY:
            raise InputError(f"cannot force fine-tuning of an evaluate-only model: {self.reason}")
        return replace(self, forced=True, force_reason=reason.strip())


@dataclass(frozen=True)
class PronunciationGap:
    """KER of g2p rows against rows with verified pronunciations: THE pronunciation-gap rule (docs/design.md#gate).

    The gate stops on it (FIX_PRONUNCIATION) and the leaderboard states it; both read this one record."""

    good: float | None
    n_good: int
    bad: float | None
    n_bad: int
    cfg: GateConfig

    @property
    def gap(self) -> float | None:
        return None if self.good is None or self.bad is None else self.bad - self.good

    @property
    def is_pronunciation_problem(self) -> bool:
        """The g2p rows are worse by the configured gap while the verified rows are good: fix the audio first."""
        gap = self.gap
        return gap is not None and gap >= self.cfg.pronunciation_gap and self.good <= self.cfg.good_source_max  # type: ignore[operator]


def pronunciation_gap(metrics: Metrics, cfg: GateConfig) -> PronunciationGap:
    good, n_good = pooled_ker(metrics.ker_by_ipa_source, cfg.good_sources)
    bad, n_bad = pooled_ker(metrics.ker_by_ipa_source, cfg.g2p_sources)
    return PronunciationGap(good, n_good, bad, n_bad, cfg)


def evaluate_gate(
    metrics: Metrics | dict,
    cfg: GateConfig,
    *,
    first_eval: bool,
    priority: tuple[str, ...] | None = None,
    evaluate_only: str | None = None,
) -> GateResult:
    """The gate's verdict. `evaluate_only` is why the scored model may not be fine-tuned (its catalogue entry's
    refusal); a FINETUNE verdict then becomes EVALUATE_ONLY, with both reasons."""
    m = as_metrics(metrics)
    result = _rules(m, cfg, first_eval=first_eval, priority=priority)
    if evaluate_only and result.outcome is GateOutcome.FINETUNE:
        model = m.model if m.model != "unknown" else "this model"
        return replace(
            result,
            outcome=GateOutcome.EVALUATE_ONLY,
            reason=f"Evaluate only: {model} cannot be fine-tuned; {evaluate_only} (The rules alone: {result.reason})",
        )
    return result


def _rules(metrics: Metrics, cfg: GateConfig, *, first_eval: bool, priority: tuple[str, ...] | None) -> GateResult:
    prio = tuple(priority or cfg.priority)
    by_cat = metrics.ker_by_entity_category
    counts = {c: g.n if (g := by_cat.get(c)) else 0 for c in prio}
    ker, n = pooled_ker(by_cat, prio)
    rows = metrics.headline.n
    base: dict[str, Any] = dict(
        rows=rows,
        priority=prio,
        priority_ker=ker,
        priority_n=n,
        priority_counts=counts,
        first_eval=first_eval,
        manifest_family=metrics.manifest_family,
        manifest_version=metrics.manifest_version,
        cycle=metrics.cycle,
    )
    names = "+".join(prio)

    def result(outcome: GateOutcome, reason: str) -> GateResult:
        return GateResult(outcome=outcome, reason=reason, **base)

    small = [f"{c} has {k} row(s)" for c, k in counts.items() if k < cfg.min_priority_rows]
    if rows < cfg.min_rows or small:
        parts = []
        if rows < cfg.min_rows:
            parts.append(f"the manifest has {rows} rows (< {cfg.min_rows})")
        if small:
            parts.append(f"priority {'; '.join(small)} (< {cfg.min_priority_rows})")
        return result(
            GateOutcome.GROW_MANIFEST,
            f"Grow the manifest first: {' and '.join(parts)}; "
            "held-out numbers would be too noisy to attribute movement.",
        )

    gap = pronunciation_gap(metrics, cfg)
    if gap.is_pronunciation_problem:
        return result(
            GateOutcome.FIX_PRONUNCIATION,
            (
                f"Fix pronunciations before training: g2p rows ({'/'.join(cfg.g2p_sources)}) "
                f"have KER {gap.bad:.3f} (n={gap.n_bad}) "
                f"vs {gap.good:.3f} (n={gap.n_good}) for {'/'.join(cfg.good_sources)} rows, a gap of {gap.gap:.3f} "
                f"(≥ {cfg.pronunciation_gap}) while the verified sources are ≤ {cfg.good_source_max}. "
                "This is a synthetic-audio problem; fine-tuning over it would teach the model wrong pronunciations."
            ),
        )

    assert ker is not None  # guaranteed by the row-count rule above (min_priority_rows >= 1)
    if ker > cfg.finetune_above:
        return result(
            GateOutcome.FINETUNE,
            f"Fine-tune: priority ({names}) KER {ker:.3f} over {n} rows is above "
            f"{cfg.finetune_above}; manifest has {rows} rows.",
        )
    if ker >= cfg.harden_below:
        if first_eval:
            return result(
                GateOutcome.GROW_MANIFEST,
                (
                    f"Grow the manifest: priority ({names}) KER {ker:.3f} over {n} rows is in the "
                    f"{cfg.harden_below}–{cfg.finetune_above} band on the first evaluation of this manifest family; "
                    "add rows before spending GPU time."
                ),
            )
        return result(
            GateOutcome.FINETUNE,
            (
                f"Fine-tune: priority ({names}) KER {ker:.3f} over {n} rows is in the {cfg.harden_below}–"
                f"{cfg.finetune_above} band and this manifest family was evaluated before."
            ),
        )
    return result(
        GateOutcome.HARDEN_EVAL,
        (
            f"Harden the evaluation: priority ({names}) KER {ker:.3f} over {n} rows is below {cfg.harden_below} "
            "(saturated); add voices, noise levels, contexts and harder terms."
        ),
    )


def history_records(history: str | Path | None, filename: str) -> list[dict]:
    """All `filename` records (gate.json / decision.json) under a history directory, oldest cycle first."""
    if history is None:
        return []
    root = Path(history)
    if not root.is_dir():
        raise InputError(f"history directory not found: {root}")
    records = []
    for p in sorted(root.rglob(filename)):
        try:
            rec = fio.read_json(p)
        except Exception as exc:
            raise InputError(f"unreadable history record {p}: {exc}") from exc
        rec["_path"] = str(p)
        records.append(rec)
    return sorted(records, key=lambda r: (int(r.get("cycle", 0)), r["_path"]))


def is_first_eval(history: list[dict], metrics: Metrics | dict) -> bool:
    """First evaluation of this manifest family: no earlier gate record for it in the history."""
    m = as_metrics(metrics)
    family, version, cycle = m.manifest_family, m.manifest_version, m.cycle
    for rec in history:
        if rec.get("manifest_family") != family:
            continue
        if int(rec.get("cycle", 0)) < cycle or rec.get("manifest_version") != version:
            return False
    return True


def render_gate(result: GateResult) -> str:
    """Markdown for the Prefect artifact and the cycle directory."""
    ker = "n/a" if result.priority_ker is None else f"{result.priority_ker:.3f}"
    lines = [
        f"# Gate: **{result.outcome}**",
        "",
        result.reason,
        "",
        f"- Rows: {result.rows}; priority categories: {', '.join(result.priority)} "
        f"(rows: {', '.join(f'{c}={n}' for c, n in result.priority_counts.items())})",
        f"- Priority KER: {ker} (n={result.priority_n}); first evaluation of this manifest family: "
        f"{'yes' if result.first_eval else 'no'}",
    ]
    if result.forced:
        lines.append(f"- **Forced past the gate by a human.** Reason: {result.force_reason}")
    lines.append(f"- Proceed to fine-tuning: {'yes' if result.proceed else 'no'}")
    return "\n".join(lines) + "\n"
