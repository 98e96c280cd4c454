"""Markdown leaderboards: the five sections in the order of docs/design.md#leaderboard, and the cycle-comparison table.

Every rate is printed with its row count `n`, because a KER of 0.0 over 2 rows and over 200 rows are
different claims. Rendering is pure: the same metrics give byte-identical markdown.
"""

from __future__ import annotations

from collections.abc import Callable

from asr_flywheel.compare import ALL, Comparison
from asr_flywheel.config import GateConfig
from asr_flywheel.control import ControlCheck
from asr_flywheel.misrecognitions import render_misrecognitions
from asr_flywheel.scoring import pooled_ker

DEFAULT_TERM_LIMIT = 100


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def _ci(entry: dict) -> str:
    if entry.get("ci_low") is None:
        return "n/a"
    return f"{entry['ci_low']:.3f}–{entry['ci_high']:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c).replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def _breakdown_table(
    title: str, label: str, breakdown: dict, *, extra: tuple[tuple[str, Callable[[dict], str]], ...] = ()
) -> list[str]:
    """A KER table; `extra` adds (header, cell-from-entry) columns between the name and the rate."""
    if not breakdown:
        return [f"_No rows with a `{label}` and a term._", ""]
    header = [label, *(h for h, _ in extra), "KER", "95% CI", "n"]
    rows = [[name, *(cell(e) for _, cell in extra), _f(e["ker"]), _ci(e), str(e["n"])] for name, e in breakdown.items()]
    return [*_table(header, rows), ""]


_TERM_COLUMNS: tuple[tuple[str, Callable[[dict], str]], ...] = (
    ("entity_category", lambda e: str(e.get("entity_category", ""))),
    ("what the model wrote (most frequent)", lambda e: render_misrecognitions(e.get("misrecognitions"))),
)


def pronunciation_gap_sentence(metrics: dict, gate: GateConfig | None = None) -> str:
    """The override/merriam-webster vs g2p delta, stated in words (docs/design.md#leaderboard)."""
    g = gate or GateConfig()
    by_src = metrics.get("ker_by_ipa_source", {})
    good, n_good = pooled_ker(by_src, g.good_sources)
    bad, n_bad = pooled_ker(by_src, g.g2p_sources)
    good_names = "/".join(g.good_sources)
    bad_names = "/".join(g.g2p_sources)
    if good is None or bad is None:
        missing = good_names if good is None else bad_names
        return f"The pronunciation gap cannot be computed: no rows with ipa_source {missing}."
    gap = bad - good
    if gap > 0:
        relation = f"{gap:.3f} worse than"
    elif gap < 0:
        relation = f"{-gap:.3f} better than"
    else:
        relation = "the same as"
    verdict = ""
    if gap >= g.pronunciation_gap and good <= g.good_source_max:
        verdict = (
            f" This exceeds the {g.pronunciation_gap:.2f} gap threshold while the verified sources are at or "
            f"below {g.good_source_max:.2f}: a synthetic-audio pronunciation problem, not a model problem."
        )
    return (
        f"g2p rows ({bad_names}) have KER {bad:.3f} (n={n_bad}) versus {good:.3f} (n={n_good}) for "
        f"{good_names} rows: g2p is {relation} the verified pronunciations.{verdict}"
    )


def render_leaderboard(
    metrics: dict,
    *,
    term_limit: int = DEFAULT_TERM_LIMIT,
    gate: GateConfig | None = None,
    comparison: Comparison | None = None,
    control: ControlCheck | None = None,
) -> str:
    """The five sections of docs/design.md#leaderboard, then seen vs unseen terms and voices, the control set and
    the cycle comparison when known."""
    cycle = metrics.get("cycle", 0)
    lines = [
        f"# Leaderboard — cycle {cycle}",
        "",
        f"- Model: `{metrics.get('model', 'unknown')}`",
        f"- Manifest: `{metrics.get('manifest', '')}` (version `{str(metrics.get('manifest_version', ''))[:12]}`)",
        f"- Rows scored: {metrics['n']} ({metrics.get('scope', 'all rows')})",
        "",
        "## 1. Headline",
        "",
    ]
    ker_ci = {"ci_low": metrics.get("ker_ci_low"), "ci_high": metrics.get("ker_ci_high")}
    lines += _table(
        ["metric", "value", "95% CI", "n"],
        [
            ["WER (mean of rows)", _f(metrics["wer"]), "", str(metrics["n"])],
            ["WER (corpus)", _f(metrics["wer_corpus"]), "", str(metrics["n"])],
            ["CER (mean of rows)", _f(metrics["cer"]), "", str(metrics["n"])],
            ["CER (corpus)", _f(metrics["cer_corpus"]), "", str(metrics["n"])],
            ["**KER**", f"**{_f(metrics['ker'])}**", _ci(ker_ci), str(metrics.get("ker_n", 0))],
            ["SER", _f(metrics["ser"]), "", str(metrics["n"])],
        ],
    )
    lines += ["", "## 2. KER by entity category", ""]
    lines += _breakdown_table("category", "entity_category", metrics.get("ker_by_entity_category", {}))
    lines += ["## 3. KER by pronunciation source", ""]
    lines += _breakdown_table("source", "ipa_source", metrics.get("ker_by_ipa_source", {}))
    lines += [f"**Pronunciation gap:** {pronunciation_gap_sentence(metrics, gate)}", ""]
    lines += ["## 4. KER by noise level", ""]
    lines += _breakdown_table("noise", "noise_level", metrics.get("ker_by_noise_level", {}))
    lines += ["## 5. Per-term KER (worst first: the fine-tune targets)", ""]
    terms = metrics.get("ker_by_term", {})
    shown = dict(list(terms.items())[:term_limit])
    lines += _breakdown_table("term", "term", shown, extra=_TERM_COLUMNS)
    if len(terms) > term_limit:
        lines += [f"_{len(terms) - term_limit} more terms in metrics.json._", ""]
    if metrics.get("ker_by_seen"):
        lines += ["## Seen vs unseen terms (unseen: no training row had the term)", ""]
        lines += _breakdown_table("terms", "seen", metrics["ker_by_seen"])
    if metrics.get("ker_by_seen_voice"):
        lines += ["## Seen vs unseen voices (unseen: no training row had the voice, as with a new clinician)", ""]
        lines += _breakdown_table("voices", "seen", metrics["ker_by_seen_voice"])
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
