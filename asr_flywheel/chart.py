"""A PNG of KER per entity category across cycles, with CI bars (docs/design.md#leaderboard).

Pure: typed per-cycle records in, one PNG file out (written to a temp file, then renamed, so a reader never
sees half an image). matplotlib is imported lazily with the Agg backend: no display is needed, and scoring
and the CLI do not pay for the import.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel.metrics_record import Metrics


@dataclass(frozen=True)
class CategoryKer:
    ker: float
    ci_low: float
    ci_high: float
    n: int


@dataclass(frozen=True)
class CycleKer:
    """One point on the x axis: a cycle (e.g. "cycle 1 baseline", "cycle 1 held-out") and its per-category KER."""

    label: str
    categories: dict[str, CategoryKer]


def cycle_ker_from_metrics(label: str, metrics: Metrics) -> CycleKer:
    """The chart record of one scored cycle, from its metrics (`ker_by_entity_category`)."""
    return CycleKer(
        label,
        {
            c: CategoryKer(g.ker, g.ci_low, g.ci_high, g.n)
            for c, g in metrics.ker_by_entity_category.items()
            if g.ci_low is not None and g.ci_high is not None
        },
    )


def write_ker_chart(cycles: Sequence[CycleKer], path: str | Path, *, title: str = "KER by entity category") -> Path:
    """Write the chart: one line per category across cycles, each point with its CI bar and n."""
    if not cycles:
        raise ValueError("the chart needs at least one cycle")
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib.figure import Figure

    categories = sorted({c for cyc in cycles for c in cyc.categories})
    fig = Figure(figsize=(max(6.0, 1.6 * len(cycles) + 3), 4.5), dpi=110)
    ax = fig.subplots()
    width = 0.3 / max(1, len(categories))  # categories side by side around each cycle, CI bars apart
    for k, cat in enumerate(categories):
        xs, ys, lo, hi, ns = [], [], [], [], []
        for i, cyc in enumerate(cycles):
            e = cyc.categories.get(cat)
            if e is None:
                continue
            xs.append(i + (k - (len(categories) - 1) / 2) * width)
            ys.append(e.ker)
            lo.append(max(0.0, e.ker - e.ci_low))
            hi.append(max(0.0, e.ci_high - e.ker))
            ns.append(e.n)
        ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=4, label=cat)
        for x, y, n in zip(xs, ys, ns, strict=True):
            ax.annotate(f"n={n}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=7)
    ax.set_xticks(range(len(cycles)), [c.label for c in cycles], rotation=15, ha="right")
    ax.set_xlim(-0.5, len(cycles) - 0.5)
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("KER (keyword error rate, 95% CI)")
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="entity_category", fontsize=8, loc="best")
    fig.tight_layout()
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, format="png")
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out
