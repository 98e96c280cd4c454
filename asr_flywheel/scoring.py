"""Score a manifest against hypotheses: per-row metrics and the typed `Metrics` record with its breakdowns and CIs.

What is computed lives here; the files a scoring writes (per_sample.jsonl, results.csv, metrics.json, the
leaderboard) are `score_files`.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, replace
from itertools import compress
from typing import Any

import numpy as np

from asr_flywheel.boost import BoostRef
from asr_flywheel.config import FlywheelConfig, StatsConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest
from asr_flywheel.metrics import RowScores, aggregate, score_rows
from asr_flywheel.metrics_record import (
    SCOPE_ALL,
    SCOPE_HELDOUT,
    SCOPE_WITH_TRAINING,
    Breakdown,
    KerGroup,
    Metrics,
)
from asr_flywheel.misrecognitions import term_misrecognitions
from asr_flywheel.normalize import normalize_many
from asr_flywheel.stats import rate_intervals

__all__ = ["SCOPE_ALL", "SCOPE_HELDOUT", "SCOPE_WITH_TRAINING", "ScoreReport", "ker_breakdown", "score_manifest"]

#: Breakdowns grouped by a manifest field: the `Metrics` field and the field it groups by.
BREAKDOWNS = {
    "ker_by_entity_category": "entity_category",
    "ker_by_ipa_source": "ipa_source",
    "ker_by_noise_level": "noise_level",
    "ker_by_term": "term",
}
MISSING = "(none)"
SEEN, UNSEEN = "seen", "unseen"
#: Terms (worst first, as the leaderboard lists them) whose misrecognitions are collected.
MISRECOGNITION_TERMS = 100
RESULTS_COLUMNS = ("audio_filepath", "term", "entity_category", "wer", "cer", "ker", "ser")


@dataclass
class ScoreReport:
    manifest: Manifest
    hyps: list[str]
    refs_norm: list[str]
    hyps_norm: list[str]
    terms_norm: list[str | None]
    scores: RowScores
    metrics: Metrics
    seen: list[bool | None] | None = None  # per row: term seen in training (None: row without a term)
    seen_voice: list[bool | None] | None = None  # per row: voice heard in training (None: row without voice_id)


def ker_breakdown(values: list, ker: np.ndarray, stats: StatsConfig, categories: dict | None = None) -> Breakdown:
    """{value: KerGroup} over rows that have a term; rows lacking the field are grouped as "(none)".

    `categories` ({term: entity_category}) labels the groups of the per-term breakdown."""
    has = ~np.isnan(ker)
    if not has.any():
        return {}
    keys = values if has.all() else list(compress(values, has.tolist()))
    index = {k: i for i, k in enumerate(dict.fromkeys(keys))}  # None (field absent) is a key like any other
    codes = np.fromiter(map(index.__getitem__, keys), dtype=np.int64, count=len(keys))
    counts = np.bincount(codes, minlength=len(index))
    misses = np.bincount(codes, weights=ker[has], minlength=len(index)).round().astype(np.int64)
    low, high = rate_intervals(
        misses, counts, resamples=stats.bootstrap_resamples, confidence=stats.confidence, seed=stats.seed
    )
    out = {}
    for key in sorted(index, key=lambda k: MISSING if k is None else k):
        i = index[key]
        name = MISSING if key is None else key
        out[name] = KerGroup(
            ker=float(misses[i] / counts[i]),
            n=int(counts[i]),
            ci_low=float(low[i]),
            ci_high=float(high[i]),
            entity_category=(categories or {}).get(name),
        )
    return out


def _term_categories(terms_norm: list[str | None], categories: list) -> dict[str, str]:
    cats: dict[str, str] = {}
    for t, c in zip(terms_norm, categories, strict=True):
        if t is not None and t not in cats:
            cats[t] = c
    return cats


def score_manifest(
    manifest: Manifest,
    hyps: list[str],
    *,
    config: FlywheelConfig | None = None,
    model_name: str = "unknown",
    cycle: int = 0,
    scope: str = SCOPE_ALL,
    family: str | None = None,
    seen_terms: Collection[str] | None = None,
    train_audio: Collection[str] | None = None,
    seen_voices: Collection[str] | None = None,
    boost: BoostRef | None = None,
) -> ScoreReport:
    """Compute every metric and breakdown for aligned manifest rows and hypotheses.

    `seen_terms` (the split's training terms, see `split.SplitResult.seen_terms`) adds KER on seen vs unseen
    terms; `train_audio` (resolved audio paths of the training rows) records how many scored rows were trained
    on, so a decision can refuse numbers flattered by training rows."""
    cfg = config or FlywheelConfig()
    if len(hyps) != len(manifest):
        raise ValueError("hyps must be aligned with the manifest rows (use hyps.align_hyps)")
    refs_norm = normalize_many(manifest.column("text"))
    hyps_norm = normalize_many(hyps)
    raw_terms = manifest.column("term")
    term_rows = [i for i, t in enumerate(raw_terms) if t is not None]
    terms_norm: list[str | None] = [None] * len(raw_terms)
    for i, t in zip(term_rows, normalize_many([raw_terms[i] for i in term_rows]), strict=True):
        terms_norm[i] = t
    empty = [
        Problem(manifest.lines[i], "text", "no words after normalisation") for i, r in enumerate(refs_norm) if not r
    ]
    if empty:
        raise InputError("cannot score rows with an empty reference", empty)
    scores = score_rows(refs_norm, hyps_norm, terms_norm)
    st = cfg.stats
    by: dict[str, Any] = {}  # Metrics' breakdown fields, by name
    for key, field_name in BREAKDOWNS.items():
        values = terms_norm if field_name == "term" else manifest.column(field_name)
        cats = _term_categories(terms_norm, manifest.column("entity_category")) if field_name == "term" else None
        by[key] = ker_breakdown(values, scores.ker, st, cats)
    worst_first = sorted(by["ker_by_term"].items(), key=lambda kv: (-kv[1].ker, -kv[1].n, kv[0]))
    by["ker_by_term"] = dict(worst_first)
    seen = None
    if seen_terms is not None:
        known = set(normalize_many(list(seen_terms)))
        seen = [None if t is None else t in known for t in terms_norm]
        by["ker_by_seen"] = ker_breakdown([_seen_label(x) for x in seen], scores.ker, st)
        by["ker_by_term"] = {t: replace(g, seen=t in known) for t, g in by["ker_by_term"].items()}
    seen_voice = None
    if seen_voices is not None:
        heard = set(seen_voices)
        seen_voice = [v in heard if isinstance(v, str) and v else None for v in manifest.column("voice_id")]
        by["ker_by_seen_voice"] = ker_breakdown([_seen_label(x) for x in seen_voice], scores.ker, st)
    shown = [t for t, g in list(by["ker_by_term"].items())[:MISRECOGNITION_TERMS] if g.ker]
    for term, mis in term_misrecognitions(refs_norm, hyps_norm, terms_norm, scores.ker, shown).items():
        by["ker_by_term"][term] = replace(by["ker_by_term"][term], misrecognitions=mis.to_dict())
    metrics = Metrics(
        headline=aggregate(scores, st),
        model=model_name,
        cycle=cycle,
        scope=scope,
        training_rows=None if train_audio is None else _count_in(manifest.audio_paths, train_audio),
        manifest=str(manifest.path),
        manifest_version=manifest.version,
        manifest_family=family or str(manifest.path.resolve()),
        confidence=st.confidence,
        bootstrap_resamples=st.bootstrap_resamples,
        boost=boost,
        **by,
    )
    return ScoreReport(manifest, list(hyps), refs_norm, hyps_norm, terms_norm, scores, metrics, seen, seen_voice)


def _count_in(audio_paths: list[str], train_audio: Collection[str]) -> int:
    train = train_audio if isinstance(train_audio, set | frozenset) else set(train_audio)
    return sum(a in train for a in audio_paths)


def _seen_label(seen: bool | None) -> str | None:
    return None if seen is None else (SEEN if seen else UNSEEN)
