"""Term-aware train/validation split (SPEC §6): row-disjoint, stratified by `entity_category`.

Within each category rows are ranked by SHA-256(seed, audio path as written) and the first
round(val_fraction × n) go to validation. Compared with shuffling, the ranking depends only on each
row's own identity, so the split is the same on every machine, independent of row order, and stable as
the manifest grows: existing rows keep their side except at the category's boundary. The same term may
land on both sides through different rows; that is intended (it measures robustness on trained vocabulary).
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import SplitConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest

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
        }


def _rank_key(seed: int, audio: str) -> bytes:
    return hashlib.sha256(f"{seed}\0{audio}".encode()).digest()


def split_manifest(
    manifest: Manifest, cfg: SplitConfig, priority: tuple[str, ...], *, min_priority_rows: int = 5
) -> SplitResult:
    by_cat: dict[str, list[int]] = defaultdict(list)
    for i, row in enumerate(manifest.rows):
        by_cat[row.get("entity_category") or NO_CATEGORY].append(i)
    short = [(c, len(by_cat.get(c, []))) for c in priority if len(by_cat.get(c, [])) < min_priority_rows]
    if short:
        raise InputError(
            f"GROW_MANIFEST: a priority category has fewer than {min_priority_rows} rows, so held-out numbers "
            "would be too noisy to attribute movement; grow the manifest before splitting",
            [
                Problem(0, "entity_category", f"priority category {c!r} has {n} row(s) (< {min_priority_rows})")
                for c, n in short
            ],
        )
    train: list[int] = []
    val: list[int] = []
    counts: dict[str, dict[str, int]] = {}
    warnings: list[str] = []
    for cat in sorted(by_cat):
        rows = by_cat[cat]
        if len(rows) == 1:
            warnings.append(f"category {cat!r} has a single row; it goes to train (nothing to validate on)")
            train += rows
            counts[cat] = {"train": 1, "validation": 0}
            continue
        ranked = sorted(rows, key=lambda i: _rank_key(cfg.seed, manifest.rows[i]["audio_filepath"]))
        n_val = min(len(rows) - 1, max(1, round(cfg.val_fraction * len(rows))))
        val += ranked[:n_val]
        train += ranked[n_val:]
        counts[cat] = {"train": len(rows) - n_val, "validation": n_val}
    return SplitResult(sorted(train), sorted(val), counts, warnings)


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
