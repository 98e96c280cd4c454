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
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel.config import BoostConfig
from asr_flywheel.errors import InputError, Problem

#: `--boost manifest`: the terms of the manifest being scored.
FROM_MANIFEST = "manifest"
#: A phrase longer than this many characters is almost certainly a pasted sentence, not a term.
MAX_PHRASE_CHARS = 200


@dataclass(frozen=True)
class BoostRef:
    """Which boost list was on, without its phrases: what a leaderboard, `metrics.json` and a record carry."""

    hash: str
    count: int
    source: str
    weights: BoostConfig

    def summary(self) -> str:
        w = self.weights
        return (
            f"{self.count} phrase(s) from {self.source or 'a list'} (hash {self.hash}; alpha {w.alpha:g}, "
            f"context score {w.context_score:g}, depth scaling {w.depth_scaling:g})"
        )

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> BoostRef:
        return cls(str(data["hash"]), int(data["count"]), str(data.get("source", "")), BoostConfig(**data["weights"]))


@dataclass(frozen=True)
class BoostList:
    phrases: tuple[str, ...]
    weights: BoostConfig = field(default_factory=BoostConfig)
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

    @property
    def ref(self) -> BoostRef:
        return BoostRef(self.hash, self.count, self.source, self.weights)

    def summary(self) -> str:
        return self.ref.summary()

    def to_dict(self) -> dict:
        return {**self.ref.to_dict(), "phrases": list(self.phrases)}

    @classmethod
    def from_dict(cls, data: dict) -> BoostList:
        return cls(tuple(data["phrases"]), BoostConfig(**data["weights"]), data.get("source", ""))


def boost_list(phrases: Iterable[str], weights: BoostConfig, source: str) -> BoostList:
    """Phrases cleaned (whitespace collapsed, duplicates after the first dropped, order kept); the weights were
    checked with the configuration (`[boost]`, `--boost-alpha`)."""
    cleaned = list(dict.fromkeys(" ".join(p.split()) for p in phrases if p and p.strip()))
    if not cleaned:
        raise InputError(f"no phrases to boost in {source or 'the list'}")
    return BoostList(tuple(cleaned), weights, source)


def read_boost_file(path: str | Path, weights: BoostConfig) -> BoostList:
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
