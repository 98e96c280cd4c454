"""What the model wrote instead of a missed term: the first thing a clinician asks.

Each missed row's reference and hypothesis are word-aligned with jiwer's `process_words`; the hypothesis words
aligned to the term's words, plus words inserted at the term's edges, are what the model wrote there. "cefazolin"
heard as "cefa zolin" aligns as an insertion plus a substitution, so the edges matter. A term deleted outright
reads as "" (nothing).

Alignment is a Python-level cost per row, so it is done for a bounded number of missed rows per term (the
first `per_term_rows` in manifest order); the counts say over how many rows they were taken.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import cast

import numpy as np

#: Missed rows aligned per term; the leaderboard states the count when a term has more misses than this.
PER_TERM_ROWS = 50
#: Misrecognitions kept per term.
TOP = 3


@dataclass(frozen=True)
class Misrecognition:
    text: str  # what the model wrote where the term was; "" when it wrote nothing there
    count: int

    def to_dict(self) -> dict:
        return {"text": self.text, "count": self.count}


@dataclass(frozen=True)
class TermMisrecognitions:
    term: str
    top: tuple[Misrecognition, ...]
    aligned_rows: int  # missed rows the counts are taken over
    missed_rows: int  # all missed rows of the term

    def to_dict(self) -> dict:
        return {
            "top": [m.to_dict() for m in self.top],
            "aligned_rows": self.aligned_rows,
            "missed_rows": self.missed_rows,
        }


def _span(term_words: list[str], ref_words: list[str]) -> tuple[int, int] | None:
    k = len(term_words)
    for i in range(len(ref_words) - k + 1):
        if ref_words[i : i + k] == term_words:
            return i, i + k
    return None


def written_for_term(alignment, start: int, end: int, hyp_words: list[str]) -> str:
    """Hypothesis words aligned to reference words [start, end), plus insertions at the span's edges."""
    hyp_idx: list[int] = []
    for chunk in alignment:
        rs, re_, hs = chunk.ref_start_idx, chunk.ref_end_idx, chunk.hyp_start_idx
        if chunk.type == "insert":
            if start <= rs <= end:
                hyp_idx += range(hs, chunk.hyp_end_idx)
        elif chunk.type != "delete":  # equal / substitute: one hyp word per ref word
            lo, hi = max(rs, start), min(re_, end)
            if lo < hi:
                hyp_idx += range(hs + lo - rs, hs + hi - rs)
    if not hyp_idx:
        return ""
    return " ".join(hyp_words[min(hyp_idx) : max(hyp_idx) + 1])


def term_misrecognitions(
    refs_norm: list[str],
    hyps_norm: list[str],
    terms_norm: list[str | None],
    ker: np.ndarray,
    terms: list[str],
    *,
    per_term_rows: int = PER_TERM_ROWS,
    top: int = TOP,
) -> dict[str, TermMisrecognitions]:
    """{term: its most frequent misrecognitions} for the given terms (those the leaderboard shows)."""
    import jiwer

    wanted = set(terms)
    missed: dict[str, list[int]] = defaultdict(list)
    for i in np.flatnonzero(ker == 1).tolist():
        t = terms_norm[i]
        if t in wanted:
            missed[t].append(i)
    rows = [i for t in terms if t in missed for i in missed[t][:per_term_rows]]
    rows = [i for i in rows if refs_norm[i]]
    if not rows:
        return {}
    out = jiwer.process_words([refs_norm[i] for i in rows], [hyps_norm[i] for i in rows])
    counts: dict[str, Counter] = defaultdict(Counter)
    for i, alignment in zip(rows, out.alignments, strict=True):
        term = cast(str, terms_norm[i])  # rows hold only missed terms
        span = _span(term.split(), refs_norm[i].split())
        if span is not None:
            counts[term][written_for_term(alignment, *span, hyps_norm[i].split())] += 1
    return {
        t: TermMisrecognitions(
            term=t,
            top=tuple(Misrecognition(text, n) for text, n in sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))[:top]),
            aligned_rows=sum(c.values()),
            missed_rows=len(missed[t]),
        )
        for t, c in counts.items()
    }


def render_misrecognitions(entry: dict | None) -> str:
    """`"cefa zolin" (3×), "" (1×)` from a metrics.json `misrecognitions` entry; notes a capped sample."""
    if not entry or not entry.get("top"):
        return ""
    text = ", ".join(
        f'"{m["text"]}" ({m["count"]}×)' if m["text"] else f"(nothing) ({m['count']}×)" for m in entry["top"]
    )
    if entry["aligned_rows"] < entry["missed_rows"]:
        text += f" — first {entry['aligned_rows']} of {entry['missed_rows']} misses"
    return text
