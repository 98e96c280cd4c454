"""Cycle comparison: cycle N vs N+1 on the same rows, per category, with paired-bootstrap CIs.

Rows are matched by audio path, so the comparison is only ever over rows both cycles scored (the
held-out rows after a fine-tune); rows only one side has are counted and reported, never mixed in.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from asr_flywheel.config import StatsConfig
from asr_flywheel.errors import InputError
from asr_flywheel.stats import paired_delta_interval

ALL = "(all)"


@dataclass(frozen=True)
class CategoryDelta:
    category: str
    n: int
    ker_before: float
    ker_after: float
    delta: float
    relative_change: float | None
    ci_low: float
    ci_high: float

    @property
    def significant(self) -> bool:
        return self.ci_low > 0 or self.ci_high < 0


@dataclass
class Comparison:
    before_label: str
    after_label: str
    rows: list[CategoryDelta]
    paired: int
    only_before: int
    only_after: int
    confidence: float
    pooled: dict[str, CategoryDelta] = field(default_factory=dict)

    def by_category(self) -> dict[str, CategoryDelta]:
        return {r.category: r for r in self.rows}

    def to_dict(self) -> dict:
        return {
            "before": self.before_label,
            "after": self.after_label,
            "paired_rows": self.paired,
            "only_before": self.only_before,
            "only_after": self.only_after,
            "confidence": self.confidence,
            "categories": [asdict(r) for r in self.rows],
        }


def relative_change(before: float, after: float) -> float | None:
    """(after - before) / before; None when before is 0 (a relative change from zero is undefined)."""
    return None if before == 0 else (after - before) / before


def _delta(name: str, b: np.ndarray, a: np.ndarray, stats: StatsConfig) -> CategoryDelta:
    kb, ka = float(b.mean()), float(a.mean())
    ci = paired_delta_interval(b, a, resamples=stats.bootstrap_resamples, confidence=stats.confidence, seed=stats.seed)
    return CategoryDelta(name, len(b), kb, ka, ka - kb, relative_change(kb, ka), ci.low, ci.high)


def compare_samples(
    before: list[dict],
    after: list[dict],
    stats: StatsConfig,
    *,
    before_label: str = "cycle N",
    after_label: str = "cycle N+1",
    pools: dict[str, tuple[str, ...]] | None = None,
) -> Comparison:
    """Paired per-category KER deltas. `pools` adds pooled rows, e.g. {"targeted": ("drug",)}."""
    b_map = {r["audio_filepath"]: r for r in before if r.get("ker") is not None}
    a_map = {r["audio_filepath"]: r for r in after if r.get("ker") is not None}
    common = [k for k in a_map if k in b_map]
    if not common:
        raise InputError("the two cycles share no scored rows with a term (rows are matched by audio path)")
    cats = np.array([b_map[k].get("entity_category") or "(none)" for k in common])
    b = np.array([b_map[k]["ker"] for k in common], dtype=np.int64)
    a = np.array([a_map[k]["ker"] for k in common], dtype=np.int64)
    rows = [_delta(c, b[cats == c], a[cats == c], stats) for c in sorted(set(cats.tolist()))]
    rows.append(_delta(ALL, b, a, stats))
    pooled = {}
    for name, members in (pools or {}).items():
        mask = np.isin(cats, list(members))
        if mask.any():
            pooled[name] = _delta(name, b[mask], a[mask], stats)
    return Comparison(
        before_label,
        after_label,
        rows,
        paired=len(common),
        only_before=len(set(b_map) - set(a_map)),
        only_after=len(set(a_map) - set(b_map)),
        confidence=stats.confidence,
        pooled=pooled,
    )
