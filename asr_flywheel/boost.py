"""Context biasing: a list of phrases the decoder is pushed toward, and its weight (docs/design.md#boosting).

Boosting is the cheap lever before fine-tuning: no training, no new weights, just a term list that decoding
favours. It can also make a model write terms where none were said, so a boost list is measured like a candidate
model (held-out rows and the control set) before it ships.

A `BoostList` is identified by its hash (phrases and weights), which the leaderboard, `metrics.json`, the registry
and a served version record, so "which list was on" is never a guess.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path

from asr_flywheel.errors import InputError, Problem

#: `--boost manifest`: the terms of the manifest being scored.
FROM_MANIFEST = "manifest"
#: A phrase longer than this many characters is almost certainly a pasted sentence, not a term.
MAX_PHRASE_CHARS = 200


@dataclass(frozen=True)
class BoostWeights:
    """The decoder's biasing weights (`[boost]`): how strongly a phrase is favoured (alpha) and the per-token score
    along a phrase (context_score, depth_scaling), as NeMo's boosting tree and Riva's word boosting read them."""

    alpha: float = 1.0
    context_score: float = 1.0
    depth_scaling: float = 2.0


@dataclass(frozen=True)
class BoostList:
    phrases: tuple[str, ...]
    weights: BoostWeights = BoostWeights()
    #: Where the phrases came from: a file path, or "manifest" (the scored manifest's terms).
    source: str = ""

    @property
    def count(self) -> int:
        return len(self.phrases)

    @property
    def hash(self) -> str:
        """Of the phrases (in order) and the weights: the same list with another alpha is another list."""
        payload = json.dumps({"phrases": list(self.phrases), "weights": asdict(self.weights)}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    def summary(self) -> str:
        w = self.weights
        return (
            f"{self.count} phrase(s) from {self.source or 'a list'} (hash {self.hash}; alpha {w.alpha:g}, "
            f"context score {w.context_score:g}, depth scaling {w.depth_scaling:g})"
        )

    def to_dict(self) -> dict:
        return {
            "hash": self.hash,
            "count": self.count,
            "source": self.source,
            "weights": asdict(self.weights),
            "phrases": list(self.phrases),
        }

    @classmethod
    def from_dict(cls, data: dict) -> BoostList:
        return cls(tuple(data["phrases"]), BoostWeights(**data["weights"]), data.get("source", ""))


def check_weights(weights: BoostWeights) -> list[Problem]:
    """Every weight that is not a finite number, or negative where a negative weight would penalise the terms."""
    problems = []
    for name, value in asdict(weights).items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            problems.append(Problem(0, f"boost.{name}", f"must be a finite number, got {value!r}"))
        elif value < 0:
            problems.append(Problem(0, f"boost.{name}", f"must be >= 0, got {value!r}"))
    return problems


def boost_list(phrases: Iterable[str], weights: BoostWeights, source: str) -> BoostList:
    """Phrases cleaned (whitespace collapsed, duplicates after the first dropped, order kept) and checked."""
    cleaned = list(dict.fromkeys(" ".join(p.split()) for p in phrases if p and p.strip()))
    problems = check_weights(weights)
    if not cleaned:
        problems.append(Problem(0, "boost", f"no phrases to boost in {source or 'the list'}"))
    if problems:
        raise InputError("cannot boost with this list", problems)
    return BoostList(tuple(cleaned), weights, source)


def read_boost_file(path: str | Path, weights: BoostWeights) -> BoostList:
    """One phrase a line (blank lines and `#` comments skipped); every unusable line is named."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"boost list not found: {p} (give a file with one phrase a line, or 'manifest')")
    try:
        lines = p.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(f"{p} is not UTF-8 text: {exc}") from None
    phrases, problems = [], []
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if len(text) > MAX_PHRASE_CHARS:
            problems.append(Problem(number, "phrase", f"{len(text)} characters (at most {MAX_PHRASE_CHARS})"))
        elif not any(c.isalnum() for c in text):
            problems.append(Problem(number, "phrase", f"no letter or digit in {text!r}"))
        else:
            phrases.append(text)
    if problems:
        raise InputError(f"unusable phrases in {p}", problems)
    return boost_list(phrases, weights, str(p))


def manifest_terms(terms: Iterable[str | None]) -> list[str]:
    """The distinct terms of a manifest's rows, in first-seen order (rows without a term add nothing)."""
    return list(dict.fromkeys(t for t in terms if t))
