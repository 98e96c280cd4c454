"""Term-aware train/validation split (docs/design.md#split): row-disjoint, stratified by `entity_category`.

Within each category rows are ranked by SHA-256(seed, audio path as written) and the first
round(val_fraction × n) go to validation. Compared with shuffling, the ranking depends only on each
row's own identity, so the split is the same on every machine, independent of row order, and stable as
the manifest grows: existing rows keep their side except at the category's boundary. The same term may
land on both sides through different rows; that is intended (it measures robustness on trained vocabulary).

`min_heldout_per_term = k` (default 0: off) makes the split term-stratified within each category as well: the k
best-ranked rows of every term go to validation first (fewer when the term has k rows or fewer, because one row
always stays in training), then the category's validation share is filled from its remaining rows in rank order.
A category whose guarantees exceed its share gets a larger validation side, and split.json says so in `warnings`.

`holdout_terms = N` first sends every row of N whole terms to validation (terms ranked by SHA-256(seed, term),
so the choice is deterministic), to measure generalisation to words the model never trained on. Terms that
end up only in validation, held out or by chance, are "unseen"; split.json lists seen and unseen terms so the
scorer can report KER on each apart (`read_split`).

`holdout_voices` does the same for voices (`voice_id`): a number of voices drawn by the seed, or a list of ids.
A clinician's voice is never in the training set, so KER on unseen voices is reported apart, like unseen terms.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from asr_flywheel import io as fio
from asr_flywheel.config import SplitConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest
from asr_flywheel.normalize import normalize_many

NO_CATEGORY = "(none)"
TRAIN_FILE = "train.jsonl"
# NeMo refuses a validation manifest named manifest.json*: never use that name.
VALIDATION_FILE = "validation.jsonl"


@dataclass
class SplitResult:
    train: list[int]
    validation: list[int]
    counts: dict[str, dict[str, int]]
    warnings: list[str] = field(default_factory=list)
    #: Normalised terms with at least one training row / only validation rows / held out on purpose.
    seen_terms: tuple[str, ...] = ()
    unseen_terms: tuple[str, ...] = ()
    heldout_terms: tuple[str, ...] = ()
    #: Voices with at least one training row / only validation rows / held out on purpose.
    seen_voices: tuple[str, ...] = ()
    unseen_voices: tuple[str, ...] = ()
    heldout_voices: tuple[str, ...] = ()

    def summary(self, cfg: SplitConfig, manifest: Manifest) -> dict:
        return {
            "manifest": str(manifest.path),
            "manifest_version": manifest.version,
            "seed": cfg.seed,
            "val_fraction": cfg.val_fraction,
            "train_rows": len(self.train),
            "validation_rows": len(self.validation),
            "counts": self.counts,
            "warnings": self.warnings,
            "holdout_terms": cfg.holdout_terms,
            "min_heldout_per_term": cfg.min_heldout_per_term,
            "heldout_terms": list(self.heldout_terms),
            "seen_terms": list(self.seen_terms),
            "unseen_terms": list(self.unseen_terms),
            "holdout_voices": cfg.holdout_voices if isinstance(cfg.holdout_voices, int) else list(cfg.holdout_voices),
            "heldout_voices": list(self.heldout_voices),
            "seen_voices": list(self.seen_voices),
            "unseen_voices": list(self.unseen_voices),
        }


@dataclass(frozen=True)
class SplitInfo:
    """What the scorer needs from a written split: which terms were trained on, and which rows."""

    seen_terms: frozenset[str]
    train_audio: frozenset[str]
    #: None for a split written before voices were recorded.
    seen_voices: frozenset[str] | None = None


def read_split(split_dir: str | Path) -> SplitInfo:
    """The seen terms (split.json) and training rows' audio paths (train.jsonl) of a split written by write_split."""
    d = Path(split_dir)
    try:
        summary = fio.read_json(d / "split.json")
        train = fio.read_jsonl(d / TRAIN_FILE)
    except FileNotFoundError as exc:
        raise InputError(f"{d} is not a written split: {exc.filename} not found") from None
    if "seen_terms" not in summary:
        raise InputError(f"{d / 'split.json'} records no seen_terms (written by an older version); split again")
    voices = summary.get("seen_voices")
    return SplitInfo(
        frozenset(summary["seen_terms"]),
        frozenset(r["audio_filepath"] for r in train),
        None if voices is None else frozenset(voices),
    )


def _rank_key(seed: int, audio: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{audio}".encode()).digest()


def _terms(manifest: Manifest) -> list[str | None]:
    raw = manifest.column("term")
    idx = [i for i, t in enumerate(raw) if isinstance(t, str)]
    out: list[str | None] = [None] * len(raw)
    for i, t in zip(idx, normalize_many([raw[i] for i in idx]), strict=True):
        out[i] = t
    return out


def _pick_heldout(terms: list[str | None], cfg: SplitConfig) -> frozenset[str]:
    if cfg.holdout_terms < 0:
        raise InputError(f"split.holdout_terms must be >= 0, got {cfg.holdout_terms}")
    distinct = sorted({t for t in terms if t})
    if cfg.holdout_terms and cfg.holdout_terms >= len(distinct):
        raise InputError(
            f"cannot hold out {cfg.holdout_terms} term(s): the manifest has {len(distinct)} distinct term(s) and "
            "at least one must remain to train on"
        )
    ranked = sorted(distinct, key=lambda t: _rank_key(cfg.seed, f"term\0{t}"))
    return frozenset(ranked[: cfg.holdout_terms])


def _pick_heldout_voices(voices: list[str | None], cfg: SplitConfig) -> frozenset[str]:
    distinct = sorted({v for v in voices if v})
    wanted = cfg.holdout_voices
    if isinstance(wanted, int):
        if wanted and wanted >= len(distinct):
            raise InputError(
                f"cannot hold out {wanted} voice(s): the manifest has {len(distinct)} distinct voice(s) "
                f"({', '.join(distinct) or 'no voice_id'}) and at least one must remain to train on"
            )
        return frozenset(sorted(distinct, key=lambda v: _rank_key(cfg.seed, f"voice\0{v}"))[:wanted])
    missing = [v for v in wanted if v not in distinct]
    if missing:
        raise InputError(
            "split.holdout_voices names voices the manifest does not have",
            [Problem(0, "split.holdout_voices", f"{v!r} (voices: {', '.join(distinct) or 'none'})") for v in missing],
        )
    if distinct and set(wanted) >= set(distinct):
        raise InputError("split.holdout_voices holds out every voice: at least one must remain to train on")
    return frozenset(wanted)


def _check_priority(manifest: Manifest, priority: tuple[str, ...], min_priority_rows: int) -> None:
    cats = manifest.column("entity_category")
    short = [(c, n) for c in priority if (n := cats.count(c)) < min_priority_rows]
    if short:
        raise InputError(
            f"GROW_MANIFEST: a priority category has fewer than {min_priority_rows} rows, so held-out numbers "
            "would be too noisy to attribute movement; grow the manifest before splitting",
            [
                Problem(0, "entity_category", f"priority category {c!r} has {n} row(s) (< {min_priority_rows})")
                for c, n in short
            ],
        )


def _category_validation(ranked: list[int], terms: list[str | None], cfg: SplitConfig) -> set[int]:
    """One category's validation rows: each term's guaranteed rows first, then the fraction in rank order."""
    chosen: set[int] = set()
    if cfg.min_heldout_per_term:
        by_term: dict[str, list[int]] = defaultdict(list)
        for i in ranked:
            if terms[i]:
                by_term[cast(str, terms[i])].append(i)
        for rows in by_term.values():
            chosen.update(rows[: min(cfg.min_heldout_per_term, len(rows) - 1)])
    n_val = min(len(ranked) - 1, max(1, round(cfg.val_fraction * len(ranked))))
    for i in ranked:
        if len(chosen) >= n_val:
            break
        chosen.add(i)
    return chosen


def split_manifest(
    manifest: Manifest, cfg: SplitConfig, priority: tuple[str, ...], *, min_priority_rows: int = 5
) -> SplitResult:
    if cfg.min_heldout_per_term < 0:
        raise InputError(f"split.min_heldout_per_term must be >= 0, got {cfg.min_heldout_per_term}")
    _check_priority(manifest, priority, min_priority_rows)
    terms = _terms(manifest)
    heldout = _pick_heldout(terms, cfg)
    voices = [v if isinstance(v, str) and v else None for v in manifest.column("voice_id")]
    heldout_voices = _pick_heldout_voices(voices, cfg)
    by_cat: dict[str, list[int]] = defaultdict(list)
    val: list[int] = []
    for i, row in enumerate(manifest.rows):
        if terms[i] in heldout or voices[i] in heldout_voices:
            val.append(i)
        else:
            by_cat[row.get("entity_category") or NO_CATEGORY].append(i)
    train: list[int] = []
    counts: dict[str, dict[str, int]] = {}
    warnings: list[str] = []
    for cat in sorted(by_cat):
        rows = by_cat[cat]
        if len(rows) == 1:
            warnings.append(f"category {cat!r} has a single row; it goes to train (nothing to validate on)")
            train += rows
            continue
        ranked = sorted(rows, key=lambda i: _rank_key(cfg.seed, manifest.rows[i]["audio_filepath"]))
        chosen = _category_validation(ranked, terms, cfg)
        if len(chosen) > max(1, round(cfg.val_fraction * len(rows))):
            warnings.append(
                f"category {cat!r}: {len(chosen)} of {len(rows)} rows go to validation (more than val_fraction) "
                f"to hold out {cfg.min_heldout_per_term} row(s) of every term"
            )
        val += [i for i in ranked if i in chosen]
        train += [i for i in ranked if i not in chosen]
    cats = manifest.column("entity_category")
    for side, idx in (("train", train), ("validation", val)):
        for i in idx:
            c = counts.setdefault(cats[i] or NO_CATEGORY, {"train": 0, "validation": 0})
            c[side] += 1
    seen = cast(set[str], {terms[i] for i in train if terms[i]})
    unseen = cast(set[str], {terms[i] for i in val if terms[i]}) - seen
    seen_v = cast(set[str], {voices[i] for i in train if voices[i]})
    unseen_v = cast(set[str], {voices[i] for i in val if voices[i]}) - seen_v
    return SplitResult(
        sorted(train),
        sorted(val),
        dict(sorted(counts.items())),
        warnings,
        seen_terms=tuple(sorted(seen)),
        unseen_terms=tuple(sorted(unseen)),
        heldout_terms=tuple(sorted(heldout)),
        seen_voices=tuple(sorted(seen_v)),
        unseen_voices=tuple(sorted(unseen_v)),
        heldout_voices=tuple(sorted(heldout_voices)),
    )


def write_split(
    manifest: Manifest,
    result: SplitResult,
    cfg: SplitConfig,
    out_dir: str | Path,
    durations: dict[str, float] | None = None,
) -> dict[str, Path]:
    """Write train.jsonl / validation.jsonl (absolute audio paths, durations filled) and split.json."""
    out = Path(out_dir)
    rows = manifest.resolved_rows(durations)
    return {
        "train": fio.write_jsonl(out / TRAIN_FILE, [rows[i] for i in result.train]),
        "validation": fio.write_jsonl(out / VALIDATION_FILE, [rows[i] for i in result.validation]),
        "split": fio.write_json(out / "split.json", result.summary(cfg, manifest)),
    }


@dataclass(frozen=True)
class HeldoutSize:
    """Whether a validation side is large enough for a decision to mean something (issue 9: one held-out row
    was 12.5 points of drug KER): at least `MIN_PER_TERM` rows per term and `MIN_PRIORITY` priority rows."""

    priority_rows: int
    min_per_term: int
    thin_terms: tuple[str, ...]

    MIN_PER_TERM = 2
    MIN_PRIORITY = 16

    @property
    def met(self) -> bool:
        return not self.thin_terms and self.priority_rows >= self.MIN_PRIORITY

    def sentence(self) -> str:
        detail = f"; terms with 1 held-out row: {', '.join(self.thin_terms)}" if self.thin_terms else ""
        return (
            f"held-out size rule (>= {self.MIN_PER_TERM} rows per term, >= {self.MIN_PRIORITY} priority rows): "
            f"{'met' if self.met else 'NOT met'}: {self.priority_rows} priority rows, "
            f"min {self.min_per_term} row(s) per term{detail}"
        )


def heldout_size(terms: list[str | None], categories: list[str | None], priority: tuple[str, ...]) -> HeldoutSize:
    """The size rule over the validation rows' `term` and `entity_category` columns."""
    from collections import Counter

    per_term = Counter(t for t in terms if t)
    prio = sum(c in priority for c in categories)
    thin = tuple(sorted(t for t, n in per_term.items() if n < HeldoutSize.MIN_PER_TERM))
    return HeldoutSize(prio, min(per_term.values(), default=0), thin)
