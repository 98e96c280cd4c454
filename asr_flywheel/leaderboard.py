"""Markdown leaderboards: the five sections in the order of docs/design.md#leaderboard, and the cycle-comparison table.

Every rate is printed with its row count `n`, because a KER of 0.0 over 2 rows and over 200 rows are
different claims. Rendering is pure: the same metrics give byte-identical markdown.
"""

from __future__ import annotations

from collections.abc import Callable

from asr_flywheel.compare import ALL, Comparison
from asr_flywheel.config import GateConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.gate import pronunciation_gap
from asr_flywheel.metrics_record import Breakdown, KerGroup, Metrics, as_metrics
from asr_flywheel.misrecognitions import render_misrecognitions

DEFAULT_TERM_LIMIT = 100


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(low: float | None, high: float | None) -> str:
    return "n/a" if low is None or high is None else f"{low:.3f}–{high:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def _breakdown_table(
    title: str, label: str, breakdown: Breakdown, *, extra: tuple[tuple[str, Callable[[KerGroup], str]], ...] = ()
) -> list[str]:
    """A KER table; `extra` adds (header, cell-from-entry) columns between the name and the rate."""
    if not breakdown:
        return [f"_No rows with a `{label}` and a term._", ""]
    header = [label, *(h for h, _ in extra), "KER", "95% CI", "n"]
    rows = [
        [name, *(cell(g) for _, cell in extra), _f(g.ker), _ci(g.ci_low, g.ci_high), str(g.n)]
        for name, g in breakdown.items()
    ]
    return [*_table(header, rows), ""]


_TERM_COLUMNS: tuple[tuple[str, Callable[[KerGroup], str]], ...] = (
    ("entity_category", lambda g: "" if g.entity_category is None else str(g.entity_category)),
    ("what the model wrote (most frequent)", lambda g: render_misrecognitions(g.misrecognitions)),
)


def pronunciation_gap_sentence(metrics: Metrics | dict, gate: GateConfig | None = None) -> str:
    """The gate's pronunciation-gap rule (`gate.pronunciation_gap`), stated in words (docs/design.md#leaderboard)."""
    g = gate or GateConfig()
    gap = pronunciation_gap(as_metrics(metrics), g)
    good_names = "/".join(g.good_sources)
    bad_names = "/".join(g.g2p_sources)
    if gap.good is None or gap.bad is None or gap.gap is None:
        missing = good_names if gap.good is None else bad_names
        return f"The pronunciation gap cannot be computed: no rows with ipa_source {missing}."
    if gap.gap > 0:
        relation = f"{gap.gap:.3f} worse than"
    elif gap.gap < 0:
        relation = f"{-gap.gap:.3f} better than"
    else:
        relation = "the same as"
    verdict = ""
    if gap.is_pronunciation_problem:
        verdict = (
            f" This exceeds the {g.pronunciation_gap:.2f} gap threshold while the verified sources are at or "
            f"below {g.good_source_max:.2f}: a synthetic-audio pronunciation problem, not a model problem."
        )
    return (
        f"g2p rows ({bad_names}) have KER {gap.bad:.3f} (n={gap.n_bad}) versus {gap.good:.3f} (n={gap.n_good}) for "
        f"{good_names} rows: g2p is {relation} the verified pronunciations.{verdict}"
    )


def render_leaderboard(
    metrics: Metrics | dict,
    *,
    term_limit: int = DEFAULT_TERM_LIMIT,
    gate: GateConfig | None = None,
    comparison: Comparison | None = None,
    control: ControlCheck | None = None,
) -> str:
    """The five sections of docs/design.md#leaderboard, then seen vs unseen terms and voices, the control set and
    the cycle comparison when known."""
    m = as_metrics(metrics)
    h = m.headline
    lines = [
        f"# Leaderboard — cycle {m.cycle}",
        "",
        f"- Model: `{m.model}`",
        f"- Manifest: `{m.manifest}` (version `{m.manifest_version[:12]}`)",
        f"- Rows scored: {h.n} ({m.scope})",
        f"- Decoding: {'boosted toward ' + m.boost.summary() if m.boost else 'plain (no boost list)'}",
        "",
        "## 1. Headline",
        "",
    ]
    lines += _table(
        ["metric", "value", "95% CI", "n"],
        [
            ["WER (mean of rows)", _f(h.wer), "", str(h.n)],
            ["WER (corpus)", _f(h.wer_corpus), "", str(h.n)],
            ["CER (mean of rows)", _f(h.cer), "", str(h.n)],
            ["CER (corpus)", _f(h.cer_corpus), "", str(h.n)],
            ["**KER**", f"**{_f(h.ker)}**", _ci(h.ker_ci_low, h.ker_ci_high), str(h.ker_n)],
            ["SER", _f(h.ser), "", str(h.n)],
        ],
    )
    lines += ["", "## 2. KER by entity category", ""]
    lines += _breakdown_table("category", "entity_category", m.ker_by_entity_category)
    lines += ["## 3. KER by pronunciation source", ""]
    lines += _breakdown_table("source", "ipa_source", m.ker_by_ipa_source)
    lines += [f"**Pronunciation gap:** {pronunciation_gap_sentence(m, gate)}", ""]
    lines += ["## 4. KER by noise level", ""]
    lines += _breakdown_table("noise", "noise_level", m.ker_by_noise_level)
    lines += ["## 5. Per-term KER (worst first: the fine-tune targets)", ""]
    terms = m.ker_by_term
    shown = dict(list(terms.items())[:term_limit])
    lines += _breakdown_table("term", "term", shown, extra=_TERM_COLUMNS)
    if len(terms) > term_limit:
        lines += [f"_{len(terms) - term_limit} more terms in metrics.json._", ""]
    if m.ker_by_seen:
        lines += ["## Seen vs unseen terms (unseen: no training row had the term)", ""]
        lines += _breakdown_table("terms", "seen", m.ker_by_seen)
    if m.ker_by_seen_voice:
        lines += ["## Seen vs unseen voices (unseen: no training row had the voice, as with a new clinician)", ""]
        lines += _breakdown_table("voices", "seen", m.ker_by_seen_voice)
    if control is not None:
        lines += [*render_control(control), ""]
    if comparison is not None:
        lines += [*render_comparison(comparison).splitlines(), ""]
    return "\n".join(lines).rstrip() + "\n"


def render_control(control: ControlCheck) -> list[str]:
    """The general-English control set: WER of the base and the candidate, and the guard's verdict."""
    rise = "n/a" if control.rise is None else f"{control.rise:+.1%}"
    verdict = "**REGRESSED**: the candidate is not kept" if control.regressed else "within the guard"
    return [
        "## Control set (general English)",
        "",
        *_table(
            ["metric", "before", "after", "relative", "limit", "n"],
            [
                [
                    "WER (mean of rows)",
                    _f(control.wer_before),
                    _f(control.wer_after),
                    rise,
                    f"+{control.max_rise:.0%}",
                    str(control.n),
                ]
            ],
        ),
        "",
        f"Control-set WER rise {rise}: {verdict}.",
    ]


def render_comparison(cmp: Comparison) -> str:
    pct = round(cmp.confidence * 100)
    lines = [
        f"## Cycle comparison: {cmp.before_label} → {cmp.after_label}",
        "",
        f"Paired over {cmp.paired} row(s) scored in both cycles (matched by audio path); "
        f"{cmp.only_before} only in {cmp.before_label}, {cmp.only_after} only in {cmp.after_label}. "
        f"Δ = after − before (negative is better); {pct}% paired-bootstrap CI.",
        "",
    ]
    rows = []
    for r in [*cmp.rows, *cmp.pooled.values()]:
        rel = "n/a" if r.relative_change is None else f"{r.relative_change:+.1%}"
        mark = " *" if r.significant else ""
        name = "**all categories**" if r.category == ALL else r.category
        rows.append(
            [
                name,
                str(r.n),
                _f(r.ker_before),
                _f(r.ker_after),
                f"{r.delta:+.3f}{mark}",
                rel,
                f"{r.ci_low:+.3f}–{r.ci_high:+.3f}",
            ]
        )
    lines += _table(["category", "n", "KER before", "KER after", "Δ KER", "relative", f"{pct}% CI of Δ"], rows)
    lines += ["", "_* the CI excludes zero._"]
    return "\n".join(lines) + "\n"
