"""Deciding from files: two metrics.json paths → a decision, paired when per-row data exists (docs/design.md#decision).

The CLI's `flywheel decide` and the flow's decide step both call `decide_files`. Per-row data
(per_sample.jsonl next to each metrics.json) gives the paired decision with a CI; without it, e.g. metrics
from another tool, the decision is taken on aggregate targeted KER, labelled "unpaired", with no CI and no
significance. An "after" scored on rows including training rows is refused, or, when explicitly allowed,
labelled loudly: such numbers measure memorisation, not held-out KER.
"""

from __future__ import annotations

from pathlib import Path

from asr_flywheel.compare import relative_change
from asr_flywheel.config import DecisionConfig, FlywheelConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.decision import UNPAIRED, DecisionResult, apply_control_guard, apply_plateau, classify, decide
from asr_flywheel.errors import InputError
from asr_flywheel.metrics_record import Metrics, as_metrics, load_metrics, pooled_ker
from asr_flywheel.score_files import load_per_sample, per_sample_path


def decide_unpaired(
    before_metrics: Metrics | dict,
    after_metrics: Metrics | dict,
    cfg: DecisionConfig,
    *,
    targets: tuple[str, ...],
    history: list[dict] | None = None,
    cycle: int = 0,
    manifest_family: str = "",
    control: ControlCheck | None = None,
) -> DecisionResult:
    """The decision table on aggregate targeted KER from two metrics.json alone: no pairing, no CI, no significance."""
    if not targets:
        raise InputError("the decision needs at least one targeted category")
    before, after = as_metrics(before_metrics), as_metrics(after_metrics)
    b_cat, a_cat = before.ker_by_entity_category, after.ker_by_entity_category
    kb, nb = pooled_ker(b_cat, targets)
    ka, na = pooled_ker(a_cat, targets)
    if kb is None or ka is None:
        side = "before" if kb is None else "after"
        raise InputError(f"the {side} metrics have no rows in the targeted categories ({', '.join(targets)})")
    rel = relative_change(kb, ka)
    decision, why = classify(kb, ka, rel, cfg)
    notes = [
        f"Unpaired comparison of aggregates: targeted KER over {nb} row(s) before vs {na} row(s) after, not "
        "necessarily the same rows. No confidence interval and no significance are reported; write "
        "per_sample.jsonl next to both metrics.json for a paired decision."
    ]
    if after.ker_by_seen:
        seen = ", ".join(f"{k} {_f(g.ker)} (n={g.n})" for k, g in after.ker_by_seen.items())
        notes.append(f"Seen vs unseen terms cannot be separated without per-row data; after: {seen}.")
    per_cat = [
        {
            "category": c,
            "n": a_cat[c].n,
            "n_before": b_cat[c].n,
            "ker_before": b_cat[c].ker,
            "ker_after": a_cat[c].ker,
            "relative_change": relative_change(b_cat[c].ker, a_cat[c].ker),
        }
        for c in sorted(set(b_cat) & set(a_cat))
    ]
    decision, why = apply_plateau(decision, why, rel, cfg, history, cycle, manifest_family)
    decision, why = apply_control_guard(decision, why, control)
    return DecisionResult(
        decision=decision,
        reason=why[0].upper() + why[1:] + ".",
        targets=tuple(targets),
        n_targeted=na,
        ker_before=kb,
        ker_after=ka,
        relative_change=rel,
        ci_low=None,
        ci_high=None,
        significant=None,
        per_category=per_cat,
        cycle=cycle,
        manifest_family=manifest_family,
        notes=notes,
        comparison=UNPAIRED,
        control=control.to_dict() if control else None,
    )


def decide_files(
    before_metrics: str | Path,
    after_metrics: str | Path,
    cfg: FlywheelConfig,
    *,
    targets: tuple[str, ...] | None = None,
    history: list[dict] | None = None,
    cycle: int | None = None,
    manifest_family: str | None = None,
    require_significance: bool | None = None,
    allow_training_rows: bool = False,
    control: ControlCheck | None = None,
) -> DecisionResult:
    """THE decision entry point for the CLI and the flow: two metrics.json paths → a decision.

    Paired whenever per_sample.jsonl sits next to both files, else unpaired on aggregates (labelled, no CI;
    asking for significance then is an error). An "after" whose recorded scope includes training rows is
    refused unless `allow_training_rows`, and then labelled loudly in the result.
    """
    before, after = load_metrics(before_metrics), load_metrics(after_metrics)
    targets = tuple(targets) if targets else cfg.decision_targets
    cycle = after.cycle if cycle is None else cycle
    family = after.manifest_family if manifest_family is None else manifest_family
    trained_on = after.includes_training_rows
    if trained_on and not allow_training_rows:
        raise InputError(_training_rows_message(after_metrics, after))
    paired = per_sample_path(before_metrics).is_file() and per_sample_path(after_metrics).is_file()
    significance = cfg.decision.require_significance if require_significance is None else require_significance
    if paired:
        result, _ = decide(
            load_per_sample(before_metrics),
            load_per_sample(after_metrics),
            cfg.decision,
            cfg.stats,
            targets=targets,
            history=history,
            cycle=cycle,
            manifest_family=family,
            require_significance=significance,
            control=control,
        )
    else:
        if significance:
            raise InputError(
                "significance was required, but it needs per-row data: per_sample.jsonl is missing next to "
                f"{before_metrics if not per_sample_path(before_metrics).is_file() else after_metrics}"
            )
        result = decide_unpaired(
            before,
            after,
            cfg.decision,
            targets=targets,
            history=history,
            cycle=cycle,
            manifest_family=family,
            control=control,
        )
    if trained_on:
        result.includes_training_rows = True
        result.notes.insert(0, "WARNING: " + _training_rows_message(after_metrics, after, allowed=True))
    return result


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _training_rows_message(path, metrics: Metrics, *, allowed: bool = False) -> str:
    n = metrics.training_rows
    rows = f"{n} training row(s)" if n else "training rows"
    head = f"{path} was scored on {metrics.headline.n} rows including {rows} (scope: {metrics.scope!r})"
    if allowed:
        return f"{head}; these numbers are flattered by rows the model trained on and do not measure held-out KER."
    return (
        f"{head}: the decision uses held-out (validation) rows only (docs/design.md#training). Score the "
        "validation rows, or allow training rows explicitly to decide anyway (the result is then labelled)."
    )
