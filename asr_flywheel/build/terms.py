"""Reading the term seed CSV and the pronunciation CSVs, reporting every bad line at once.

A term is never silently dropped: an empty term, a category outside `[manifest] categories`, or a duplicate
(same words after normalisation) is a `Problem` with its line number, and the build does not start.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel.build.phonemes import ALPHABETS, Pronunciation
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.normalize import normalize


@dataclass(frozen=True)
class TermSpec:
    """One row of the seed CSV, with its 1-based line number for error messages."""

    term: str
    category: str
    line: int

    @property
    def key(self) -> str:
        """Identity of a term: its normalised words (so `Sepsis` and `sepsis ` are the same term)."""
        return normalize(self.term)


def _rows(path: Path, required: tuple[str, ...]) -> tuple[list[tuple[int, dict]], list[Problem]]:
    """(line, row) pairs of a CSV with a header; file-level problems when it cannot be read."""
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"file not found: {path}") from None
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in reader.fieldnames or []]
    missing = [c for c in required if c not in header]
    if missing:
        raise InputError(f"{path}: header must name the columns {', '.join(required)} (missing: {', '.join(missing)})")
    reader.fieldnames = header
    # line_num after reading a row is the line it ends on: exact for one-line rows, and blank lines (which
    # DictReader skips) do not shift the numbers.
    out = [(reader.line_num, {k: (v or "").strip() for k, v in row.items() if k is not None}) for row in reader]
    return out, []


def read_terms(path: str | Path, categories: tuple[str, ...]) -> tuple[list[TermSpec], list[Problem]]:
    """Terms in file order and every problem (empty term, unknown category, duplicate), each with its line."""
    rows, problems = _rows(Path(path), ("term", "entity_category"))
    terms: list[TermSpec] = []
    first_seen: dict[str, int] = {}
    for line, row in rows:
        term, category = row.get("term", ""), row.get("entity_category", "")
        bad = False
        if not term or not normalize(term):
            problems.append(Problem(line, "term", "empty term (no words)"))
            bad = True
        if category not in categories:
            why = "missing" if not category else f"{category!r} is not in the vocabulary"
            problems.append(Problem(line, "entity_category", f"{why} (allowed: {', '.join(categories)})"))
            bad = True
        if bad:
            continue
        spec = TermSpec(term=term, category=category, line=line)
        if spec.key in first_seen:
            problems.append(Problem(line, "term", f"duplicate of line {first_seen[spec.key]} ({term!r})"))
            continue
        first_seen[spec.key] = line
        terms.append(spec)
    if not rows:
        problems.append(Problem(0, "(file)", f"{path}: no terms"))
    return terms, problems


def read_pronunciations(path: str | Path, source: str) -> tuple[dict[str, Pronunciation], list[Problem]]:
    """`term,phonemes[,alphabet]` rows (alphabet `ipa` by default, or `espeak`), keyed by normalised term."""
    rows, problems = _rows(Path(path), ("term", "phonemes"))
    found: dict[str, Pronunciation] = {}
    first_seen: dict[str, int] = {}
    for line, row in rows:
        term, phonemes, alphabet = row.get("term", ""), row.get("phonemes", ""), row.get("alphabet") or "ipa"
        where = f"{Path(path).name}"
        if not normalize(term):
            problems.append(Problem(line, f"{where}:term", "empty term"))
            continue
        if not phonemes:
            problems.append(Problem(line, f"{where}:phonemes", f"no phonemes for {term!r}"))
            continue
        if alphabet not in ALPHABETS:
            problems.append(Problem(line, f"{where}:alphabet", f"{alphabet!r} (allowed: {', '.join(ALPHABETS)})"))
            continue
        key = normalize(term)
        if key in first_seen:
            problems.append(Problem(line, f"{where}:term", f"duplicate of line {first_seen[key]} ({term!r})"))
            continue
        first_seen[key] = line
        found[key] = Pronunciation(phrase=term, phonemes=phonemes, alphabet=alphabet, source=source)
    return found, problems
