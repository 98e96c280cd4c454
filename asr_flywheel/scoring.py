"""Score a manifest against hypotheses: per-row metrics, breakdowns with CIs, and the cycle's files.

Outputs (names the methodology's users recognise, docs/design.md#cycle-artifacts):
`per_sample.jsonl` (every manifest field + ref/hyp + per-row scores), `results.csv`
(`audio_filepath,term,entity_category,wer,cer,ker,ser`), `metrics.json` (headline + breakdowns) and
`leaderboard_cycle<N>.md`.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Collection
from dataclasses import dataclass
from itertools import compress
from pathlib import Path

import numpy as np

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig, StatsConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest
from asr_flywheel.metrics import RowScores, aggregate, score_rows
from asr_flywheel.misrecognitions import term_misrecognitions
from asr_flywheel.normalize import normalize_many
from asr_flywheel.stats import rate_intervals

#: metrics.json breakdown keys, in leaderboard order, and the manifest field each groups by.
BREAKDOWNS = {
    "ker_by_entity_category": "entity_category",
    "ker_by_ipa_source": "ipa_source",
    "ker_by_noise_level": "noise_level",
    "ker_by_term": "term",
}
MISSING = "(none)"
SEEN, UNSEEN = "seen", "unseen"
#: Scope labels recorded in metrics.json. The decision refuses an "after" whose rows include training rows.
SCOPE_ALL = "all rows"
SCOPE_HELDOUT = "held-out (validation) rows"
SCOPE_WITH_TRAINING = "all rows, including training rows"
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
    metrics: dict
    seen: list[bool | None] | None = None  # per row: term seen in training (None: row without a term)
    seen_voice: list[bool | None] | None = None  # per row: voice heard in training (None: row without voice_id)


def ker_breakdown(values: list, ker: np.ndarray, stats: StatsConfig, extra: dict | None = None) -> dict:
    """{value: {ker, n, ci_low, ci_high}} over rows that have a term; rows lacking the field → "(none)"."""
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
        entry = {
            "ker": float(misses[i] / counts[i]),
            "n": int(counts[i]),
            "ci_low": float(low[i]),
            "ci_high": float(high[i]),
        }
        if extra and name in extra:
            entry.update(extra[name])
        out[name] = entry
    return out


def _term_categories(terms_norm: list[str | None], categories: list) -> dict[str, dict]:
    cats: dict[str, dict] = {}
    for t, c in zip(terms_norm, categories, strict=True):
        if t is not None and t not in cats:
            cats[t] = {"entity_category": c}
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
    agg = aggregate(scores)
    st = cfg.stats
    ker_ci: tuple[float | None, float | None] = (None, None)
    if agg.ker_n:
        low, high = rate_intervals(
            np.array([int(np.nansum(scores.ker))]),
            np.array([agg.ker_n]),
            resamples=st.bootstrap_resamples,
            confidence=st.confidence,
            seed=st.seed,
        )
        ker_ci = (float(low[0]), float(high[0]))
    metrics: dict = {
        "n": agg.n,
        "wer": agg.wer,
        "cer": agg.cer,
        "ker": agg.ker,
        "ser": agg.ser,
        "wer_corpus": agg.wer_corpus,
        "cer_corpus": agg.cer_corpus,
        "ker_n": agg.ker_n,
        "ker_ci_low": ker_ci[0],
        "ker_ci_high": ker_ci[1],
        "model": model_name,
        "cycle": cycle,
        "scope": scope,
        "training_rows": None if train_audio is None else _count_in(manifest.audio_paths, train_audio),
        "manifest": str(manifest.path),
        "manifest_version": manifest.version,
        "manifest_family": family or str(manifest.path.resolve()),
        "confidence": st.confidence,
        "bootstrap_resamples": st.bootstrap_resamples,
    }
    for key, field_name in BREAKDOWNS.items():
        values = terms_norm if field_name == "term" else manifest.column(field_name)
        extra = _term_categories(terms_norm, manifest.column("entity_category")) if field_name == "term" else None
        metrics[key] = ker_breakdown(values, scores.ker, st, extra)
    metrics["ker_by_term"] = dict(
        sorted(metrics["ker_by_term"].items(), key=lambda kv: (-kv[1]["ker"], -kv[1]["n"], kv[0]))
    )
    seen = None
    if seen_terms is not None:
        known = set(normalize_many(list(seen_terms)))
        seen = [None if t is None else t in known for t in terms_norm]
        metrics["ker_by_seen"] = ker_breakdown([_seen_label(x) for x in seen], scores.ker, st)
        for term, entry in metrics["ker_by_term"].items():
            entry["seen"] = term in known
    seen_voice = None
    if seen_voices is not None:
        heard = set(seen_voices)
        seen_voice = [v in heard if isinstance(v, str) and v else None for v in manifest.column("voice_id")]
        metrics["ker_by_seen_voice"] = ker_breakdown([_seen_label(x) for x in seen_voice], scores.ker, st)
    shown = [t for t, e in list(metrics["ker_by_term"].items())[:MISRECOGNITION_TERMS] if e["ker"] > 0]
    for term, mis in term_misrecognitions(refs_norm, hyps_norm, terms_norm, scores.ker, shown).items():
        metrics["ker_by_term"][term]["misrecognitions"] = mis.to_dict()
    return ScoreReport(manifest, list(hyps), refs_norm, hyps_norm, terms_norm, scores, metrics, seen, seen_voice)


def _count_in(audio_paths: list[str], train_audio: Collection[str]) -> int:
    train = train_audio if isinstance(train_audio, set | frozenset) else set(train_audio)
    return sum(a in train for a in audio_paths)


def _seen_label(seen: bool | None) -> str | None:
    return None if seen is None else (SEEN if seen else UNSEEN)


def includes_training_rows(metrics: dict) -> bool:
    """True when metrics.json says its rows include training rows (count recorded, or the scope label says so)."""
    return bool(metrics.get("training_rows")) or metrics.get("scope") == SCOPE_WITH_TRAINING


def per_sample_rows(report: ScoreReport) -> list[dict]:
    """Every manifest field (audio path resolved) plus ref, hyp and per-row scores.

    The normalised forms are not stored: normalisation is deterministic (`asr_flywheel.normalize`), and leaving
    them out keeps the file about a quarter smaller."""
    s = report.scores
    m = report.manifest
    ker = [None if k != k else int(k) for k in s.ker.tolist()]  # NaN != NaN: rows without a term
    rows = [
        {
            **row,
            "audio_filepath": audio,
            "ref": row["text"],
            "hyp": hyp,
            "wer": w,
            "cer": c,
            "ker": k,
            "ser": se,
            "word_errors": we,
            "ref_words": rw,
            "char_errors": ce,
            "ref_chars": rc,
        }
        for row, audio, hyp, w, c, k, se, we, rw, ce, rc in zip(
            m.rows,
            m.audio_paths,
            report.hyps,
            np.round(s.wer, 6).tolist(),
            np.round(s.cer, 6).tolist(),
            ker,
            s.ser.astype(np.int64).tolist(),
            s.word_errors.tolist(),
            s.ref_words.tolist(),
            s.char_errors.tolist(),
            s.ref_chars.tolist(),
            strict=True,
        )
    ]
    if (
        report.seen is not None
    ):  # the decision pairs rows by audio and decides on seen terms only (docs/design.md#decision)
        for row, seen in zip(rows, report.seen, strict=True):
            row["seen_term"] = seen
    if report.seen_voice is not None:
        for row, heard in zip(rows, report.seen_voice, strict=True):
            row["seen_voice"] = heard
    return rows


_CSV_SPECIAL = re.compile(r'[",\r\n]')


def results_csv(report: ScoreReport) -> str:
    """results.csv. Text columns are checked once for characters that need CSV quoting; only if one does is the
    csv module used (row by row), else rows are joined directly."""
    s = report.scores
    m = report.manifest
    terms = ["" if t is None else t for t in m.column("term")]
    cats = ["" if c is None else c for c in m.column("entity_category")]
    wer, cer = np.round(s.wer, 6).tolist(), np.round(s.cer, 6).tolist()
    ker = ["" if k != k else str(int(k)) for k in s.ker.tolist()]
    ser = s.ser.astype(np.int64).tolist()
    columns = (m.audio_paths, terms, cats, wer, cer, ker, ser)
    if any(_CSV_SPECIAL.search("\x1f".join(col)) for col in columns[:3]):
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(RESULTS_COLUMNS)
        w.writerows(zip(*columns, strict=True))
        return buf.getvalue()
    header = ",".join(RESULTS_COLUMNS) + "\n"
    return header + "".join(
        [f"{a},{t},{c},{w},{ce},{k},{se}\n" for a, t, c, w, ce, k, se in zip(*columns, strict=True)]
    )


def write_score_outputs(
    report: ScoreReport, out_dir: str | Path, *, leaderboard: bool = True, files: fio.FileSet | None = None
) -> dict[str, Path]:
    """Write the per-cycle scoring files as one set (`fio.FileSet`: all or none, metrics.json last); returns
    {kind: path}. With `files`, they join the caller's set, which the caller commits."""
    from asr_flywheel.leaderboard import render_leaderboard

    if files is None:
        with fio.file_set() as own:
            return write_score_outputs(report, out_dir, leaderboard=leaderboard, files=own)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "per_sample": files.write_jsonl(out / "per_sample.jsonl", per_sample_rows(report)),
        "results": files.write_text(out / "results.csv", results_csv(report)),
    }
    if leaderboard:
        cycle = report.metrics["cycle"]
        paths["leaderboard"] = files.write_text(
            out / f"leaderboard_cycle{cycle}.md", render_leaderboard(report.metrics)
        )
    paths["metrics"] = files.write_json(out / "metrics.json", report.metrics)  # last: readers take it as "done"
    return paths


def per_sample_path(metrics_path: str | Path) -> Path:
    return Path(metrics_path).parent / "per_sample.jsonl"


def load_per_sample(metrics_path: str | Path) -> list[dict]:
    """The per_sample.jsonl written next to a metrics.json (needed for paired comparisons)."""
    p = per_sample_path(metrics_path)
    if not p.is_file():
        raise InputError(f"{p} not found: paired comparisons need the per_sample.jsonl written next to {metrics_path}")
    return fio.read_jsonl(p)


def load_metrics(path: str | Path) -> dict:
    p = Path(path)
    if not p.is_file():
        raise InputError(f"metrics file not found: {p}")
    try:
        data = fio.read_json(p)
    except Exception as exc:
        raise InputError(f"{p} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p} is not a flywheel metrics.json: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in ("n", "ker", "ker_by_entity_category", "ker_by_ipa_source") if k not in data]
    if missing:
        raise InputError(f"{p} is not a flywheel metrics.json", [Problem(0, k, "missing key") for k in missing])
    problems = metrics_field_problems(data)
    if problems:
        raise InputError(f"{p}: the gate and the decision cannot read these fields", problems)
    return data


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_rate(v) -> bool:
    return v is None or (isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1)


def metrics_field_problems(metrics: dict) -> list[Problem]:
    """Every field of a metrics.json the gate and the decision read, with the wrong type (hand-edited, foreign)."""
    problems = []
    if not _is_int(metrics.get("n")):
        problems.append(Problem(0, "n", f"expected a row count (integer), got {metrics.get('n')!r}"))
    if not _is_int(metrics.get("cycle", 0)):
        problems.append(Problem(0, "cycle", f"expected an integer, got {metrics.get('cycle')!r}"))
    for key in ("ker_by_entity_category", "ker_by_ipa_source"):
        table = metrics.get(key)
        if not isinstance(table, dict):
            problems.append(Problem(0, key, f"expected an object of groups, got {type(table).__name__}"))
            continue
        for group, entry in table.items():
            if not isinstance(entry, dict):
                problems.append(Problem(0, f"{key}.{group}", f"expected an object, got {entry!r}"))
                continue
            if not _is_rate(entry.get("ker")):
                problems.append(
                    Problem(0, f"{key}.{group}.ker", f"expected a rate in [0, 1], got {entry.get('ker')!r}")
                )
            if not _is_int(entry.get("n")):
                problems.append(Problem(0, f"{key}.{group}.n", f"expected an integer, got {entry.get('n')!r}"))
    return problems


def pooled_ker(breakdown: dict, keys) -> tuple[float | None, int]:
    """KER over the union of some breakdown groups (e.g. all priority categories), weighted by n."""
    groups = [breakdown[k] for k in keys if breakdown.get(k)]
    n = sum(g["n"] for g in groups)
    return (sum(g["ker"] * g["n"] for g in groups) / n if n else None), n
