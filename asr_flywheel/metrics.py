"""Per-row WER, CER, KER and SER over normalised text, and their aggregates (SPEC §4).

Edit distances come from rapidfuzz's Levenshtein (the C++ backend jiwer itself uses); word-level
distances compare token lists. Everything returns numpy arrays so aggregation and breakdowns are
vectorised. Inputs must already be normalised (see `asr_flywheel.normalize`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rapidfuzz.distance import Levenshtein


def term_found(term_norm: str, hyp_norm: str) -> bool:
    """True when the normalised term's words occur in the hypothesis as a contiguous, in-order run.

    Word boundaries matter: "cefa zolin" does not contain "cefazolin", and "cefazolins" does not either.
    """
    return f" {term_norm} " in f" {hyp_norm} "


def keyword_error(term_norm: str, hyp_norm: str) -> int:
    """KER for one row: 1 when the term is missing from the hypothesis, else 0."""
    return 0 if term_found(term_norm, hyp_norm) else 1


def word_error_rate(ref_norm: str, hyp_norm: str) -> float:
    ref = ref_norm.split()
    if not ref:
        raise ValueError("WER is undefined for an empty reference")
    return Levenshtein.distance(ref, hyp_norm.split()) / len(ref)


def char_error_rate(ref_norm: str, hyp_norm: str) -> float:
    if not ref_norm:
        raise ValueError("CER is undefined for an empty reference")
    return Levenshtein.distance(ref_norm, hyp_norm) / len(ref_norm)


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
    ker = np.fromiter(
        (np.nan if t is None else float(f" {t} " not in f" {h} ") for t, h in zip(terms, hyps, strict=True)),
        dtype=np.float64,
        count=n,
    )
    return RowScores(word_errors, ref_words, char_errors, ref_chars, ker, ser.astype(np.float64))


@dataclass(frozen=True)
class Aggregate:
    """Headline numbers: means of per-row values (the methodology's headline) and corpus-level rates."""

    n: int
    wer: float
    cer: float
    ker: float | None
    ker_n: int
    ser: float
    wer_corpus: float
    cer_corpus: float


def aggregate(scores: RowScores) -> Aggregate:
    n = len(scores)
    if n == 0:
        raise ValueError("cannot aggregate zero rows")
    has_term = ~np.isnan(scores.ker)
    ker_n = int(has_term.sum())
    return Aggregate(
        n=n,
        wer=float(scores.wer.mean()),
        cer=float(scores.cer.mean()),
        ker=float(scores.ker[has_term].mean()) if ker_n else None,
        ker_n=ker_n,
        ser=float(scores.ser.mean()),
        wer_corpus=float(scores.word_errors.sum() / scores.ref_words.sum()),
        cer_corpus=float(scores.char_errors.sum() / scores.ref_chars.sum()),
    )
