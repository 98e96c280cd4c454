"""The judge's verdict on built clips: is the speech around the term intelligible to a recogniser trained on
human speech?

The judge (PocketSphinx by default) knows no clinical term, so its errors on the term say nothing about the
audio; its errors on the carrier words (every word but the term) do. `carrier_wer` aligns the hypothesis to the
reference with the term as a wildcard that absorbs any run of hypothesis words at no cost ("vancomycin" heard
as "them calm my son"), and counts substitutions, deletions and insertions on the carrier words only.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from asr_flywheel.normalize import normalize

#: `--judge-max`: rows whose carrier WER is above this are not appended (they go to the rejects file).
DEFAULT_JUDGE_MAX = 0.5
#: The eval-only model the build asks by default.
DEFAULT_JUDGE = "cmu/pocketsphinx-en-us"


def _term_span(ref: list[str], term: list[str]) -> tuple[int, int] | None:
    for i in range(len(ref) - len(term) + 1):
        if ref[i : i + len(term)] == term:
            return i, i + len(term)
    return None


def carrier_errors(reference: str, hypothesis: str, term: str) -> tuple[int, int]:
    """(edits on carrier words, number of carrier words) under the best alignment with the term as a wildcard."""
    ref, hyp, words = normalize(reference).split(), normalize(hypothesis).split(), normalize(term).split()
    span = _term_span(ref, words) if words else None
    if span is None:
        tokens: list[str | None] = list(ref)
    else:
        tokens = [*ref[: span[0]], None, *ref[span[1] :]]
    n, m = len(tokens), len(hyp)
    # dist[i][j]: cheapest alignment of tokens[:i] with hyp[:j]; None is the wildcard (absorbs hyp[k:j] for free)
    dist = [[0] * (m + 1) for _ in range(n + 1)]
    for j in range(m + 1):
        dist[0][j] = j
    for i in range(1, n + 1):
        tok = tokens[i - 1]
        row, prev = dist[i], dist[i - 1]
        if tok is None:
            best = prev[0]
            for j in range(m + 1):
                best = min(best, prev[j])
                row[j] = best
            continue
        row[0] = prev[0] + 1
        for j in range(1, m + 1):
            row[j] = min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (tok != hyp[j - 1]))
    return dist[n][m], sum(1 for t in tokens if t is not None)


def carrier_wer(reference: str, hypothesis: str, term: str) -> float | None:
    """Edits on the carrier words / their count (None when the sentence is the term alone)."""
    errors, count = carrier_errors(reference, hypothesis, term)
    return round(errors / count, 4) if count else None


@dataclass(frozen=True)
class Verdict:
    audio_filepath: str
    voice: str
    noise_level: str
    hypothesis: str
    carrier_wer: float | None


@dataclass
class JudgeSummary:
    """What the build prints and reports: carrier WER per voice and per noise level, and what was rejected."""

    model: str
    limit: float
    rows: int = 0
    rejected: int = 0
    by_voice: dict[str, dict[str, float]] = field(default_factory=dict)
    by_noise: dict[str, dict[str, float]] = field(default_factory=dict)
    #: Carrier WER over every judged clip, kept or rejected (n, mean, median).
    overall: dict[str, float] = field(default_factory=dict)
    #: Voices whose median carrier WER is above the limit (their speech is not what a recogniser meets).
    voices_over_limit: list[str] = field(default_factory=list)
    rejects_file: str | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _stats(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "mean": round(statistics.fmean(values), 4),
        "median": round(statistics.median(values), 4),
    }


def summarise(verdicts: Iterable[Verdict], model: str, limit: float) -> JudgeSummary:
    by_voice: dict[str, list[float]] = defaultdict(list)
    by_noise: dict[str, list[float]] = defaultdict(list)
    rows = rejected = 0
    for v in verdicts:
        rows += 1
        if v.carrier_wer is None:
            continue
        by_voice[v.voice].append(v.carrier_wer)
        by_noise[v.noise_level].append(v.carrier_wer)
        rejected += v.carrier_wer > limit
    voice_stats = {k: _stats(vals) for k, vals in sorted(by_voice.items())}
    every = [w for vals in by_voice.values() for w in vals]
    return JudgeSummary(
        model=model,
        limit=limit,
        rows=rows,
        rejected=rejected,
        by_voice=voice_stats,
        by_noise={k: _stats(vals) for k, vals in sorted(by_noise.items())},
        overall=_stats(every) if every else {},
        voices_over_limit=[k for k, s in voice_stats.items() if s["median"] > limit],
    )
