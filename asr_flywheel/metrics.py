"""Per-row WER, CER, KER and SER over normalised text, and their aggregates (docs/design.md#metrics).

Edit distances come from rapidfuzz's Levenshtein (the C++ backend jiwer itself uses); word-level
distances compare token lists. Everything returns numpy arrays so aggregation and breakdowns are
vectorised. Inputs must already be normalised (see `asr_flywheel.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein

from asr_flywheel.config import StatsConfig
from asr_flywheel.metrics_record import Headline
from asr_flywheel.stats import rate_intervals


def terms_found(terms_norm: list[str], texts_norm: list[str]) -> np.ndarray:
    """THE keyword rule (docs/design.md#metrics), used by scoring (KER) and validation (term-in-text) alike.

    Row i is True when the normalised term's words occur in the normalised text as a contiguous, in-order word
    run. Word boundaries matter: "cefa zolin" does not contain "cefazolin", "nystatin" does not contain "statin".
    Both inputs are normalised (single spaces, no edge spaces), so padding with one space on each side turns a
    substring test into a whole-word test. Batched, so the hot path pays no Python call per row.
    """
    return np.fromiter(
        (f" {t} " in f" {x} " for t, x in zip(terms_norm, texts_norm, strict=True)), dtype=bool, count=len(texts_norm)
    )


def keyword_errors(terms_norm: list[str | None], hyps_norm: list[str]) -> np.ndarray:
    """Per-row KER: 1.0 when the term is missing from the hypothesis, 0.0 when found, NaN for rows without a term."""
    if None not in terms_norm:
        return (~terms_found(terms_norm, hyps_norm)).astype(np.float64)  # type: ignore[arg-type]
    rows = [i for i, t in enumerate(terms_norm) if t is not None]
    ker = np.full(len(hyps_norm), np.nan)
    if rows:
        ker[rows] = ~terms_found([terms_norm[i] for i in rows], [hyps_norm[i] for i in rows])  # type: ignore[misc]
    return ker


@dataclass(frozen=True)
class RowScores:
    """Per-row scores as parallel arrays. `ker` is NaN for rows without a term."""

    word_errors: np.ndarray
    ref_words: np.ndarray
    char_errors: np.ndarray
    ref_chars: np.ndarray
    ker: np.ndarray
    ser: np.ndarray

    @property
    def wer(self) -> np.ndarray:
        return self.word_errors / self.ref_words

    @property
    def cer(self) -> np.ndarray:
        return self.char_errors / self.ref_chars

    def __len__(self) -> int:
        return len(self.ser)


def score_rows(refs: list[str], hyps: list[str], terms: list[str | None]) -> RowScores:
    """Score normalised (ref, hyp, term) triples. Raises ValueError naming rows with an empty reference."""
    if not (len(refs) == len(hyps) == len(terms)):
        raise ValueError("refs, hyps and terms must have the same length")
    empty = [i for i, r in enumerate(refs) if not r]
    if empty:
        raise ValueError(f"empty reference after normalisation at row index(es) {empty[:20]}")
    dist = Levenshtein.distance
    n = len(refs)
    # Normalised text has single spaces and no edge spaces, so a row's word count is its spaces + 1.
    ref_words = np.fromiter((r.count(" ") + 1 for r in refs), dtype=np.int64, count=n)
    ref_chars = np.fromiter((len(r) for r in refs), dtype=np.int64, count=n)
    ser = np.fromiter((r != h for r, h in zip(refs, hyps, strict=True)), dtype=bool, count=n)
    differ = np.flatnonzero(ser).tolist()  # identical rows have zero edits: skip the distance calls
    word_errors = np.zeros(n, dtype=np.int64)
    char_errors = np.zeros(n, dtype=np.int64)
    if differ:
        word_errors[differ] = [dist(refs[i].split(), hyps[i].split()) for i in differ]
        char_errors[differ] = [dist(refs[i], hyps[i]) for i in differ]
    ker = keyword_errors(terms, hyps)
    return RowScores(word_errors, ref_words, char_errors, ref_chars, ker, ser.astype(np.float64))


def aggregate(scores: RowScores, stats: StatsConfig | None = None) -> Headline:
    """The headline of scored rows; with `stats`, KER's bootstrap CI too (the leaderboard's headline row)."""
    n = len(scores)
    if n == 0:
        raise ValueError("cannot aggregate zero rows")
    has_term = ~np.isnan(scores.ker)
    ker_n = int(has_term.sum())
    ci: tuple[float | None, float | None] = (None, None)
    if stats is not None and ker_n:
        low, high = rate_intervals(
            np.array([int(np.nansum(scores.ker))]),
            np.array([ker_n]),
            resamples=stats.bootstrap_resamples,
            confidence=stats.confidence,
            seed=stats.seed,
        )
        ci = (float(low[0]), float(high[0]))
    return Headline(
        n=n,
        wer=float(scores.wer.mean()),
        cer=float(scores.cer.mean()),
        ker=float(scores.ker[has_term].mean()) if ker_n else None,
        ker_n=ker_n,
        ser=float(scores.ser.mean()),
        wer_corpus=float(scores.word_errors.sum() / scores.ref_words.sum()),
        cer_corpus=float(scores.char_errors.sum() / scores.ref_chars.sum()),
        ker_ci_low=ci[0],
        ker_ci_high=ci[1],
    )


@dataclass(frozen=True)
class NonTermWer:
    """WER on the words around the term (the carrier words) of rows with a term."""

    wer: float | None
    words: int


def non_term_wer(refs_norm: list[str], hyps_norm: list[str], terms_norm: list[str]) -> NonTermWer:
    """Word errors outside the term, over the reference words outside the term (normalised inputs).

    A general base should fail clinical rows on the terms only, so its carrier words must be mostly right. Words
    are aligned by Levenshtein edit operations; an edit on a term word, or an insertion next to the term, is the
    term's and is not counted. Rows whose term is not in the reference are skipped.
    """
    errors = words = 0
    for ref, hyp, term in zip(refs_norm, hyps_norm, terms_norm, strict=True):
        rw, tw = ref.split(), term.split()
        start = next((i for i in range(len(rw)) if rw[i : i + len(tw)] == tw), None)
        if start is None or not tw:
            continue
        span = set(range(start, start + len(tw)))
        words += len(rw) - len(tw)
        for op in Levenshtein.editops(rw, hyp.split()):
            owner = {op.src_pos, op.src_pos - 1} if op.tag == "insert" else {op.src_pos}
            errors += not owner & span
    return NonTermWer(errors / words if words else None, words)
