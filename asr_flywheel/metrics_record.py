"""The typed `Metrics` record: what one scoring says about one model on one set of rows (docs/design.md#metrics).

`metrics.json` is its serialisation. The gate, the decision, the control guard, the leaderboard, the chart and the
step records all read this record, never the JSON by string key, so a metric is declared once here:

- a headline number is a field of `Headline` (computed in `metrics.aggregate`, shown by the leaderboard);
- a breakdown is a `Breakdown` field of `Metrics` (computed in `scoring`, shown by the leaderboard).

Files written before `schema_version` existed (version 1) load unchanged: the layout is the same, flat headline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostRef
from asr_flywheel.errors import InputError, Problem

#: Version 2 adds `schema_version` itself; version 1 (no field) has the same layout.
SCHEMA_VERSION = 2
#: Scope labels recorded in metrics.json. The decision refuses an "after" whose rows include training rows.
SCOPE_ALL = "all rows"
SCOPE_HELDOUT = "held-out (validation) rows"
SCOPE_WITH_TRAINING = "all rows, including training rows"


@dataclass(frozen=True)
class KerGroup:
    """KER over the rows of one group of a breakdown (a category, a noise level, a term...), with its CI.

    The per-term breakdown also carries the term's category, whether training saw it, and what the model wrote."""

    ker: float
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    entity_category: str | None = None
    seen: bool | None = None
    misrecognitions: dict | None = None

    def to_dict(self) -> dict:
        return {f.name: v for f in fields(self) if (v := getattr(self, f.name)) is not None or f.name in _GROUP_CORE}


_GROUP_CORE = frozenset(("ker", "n", "ci_low", "ci_high"))
Breakdown = dict[str, KerGroup]


@dataclass(frozen=True)
class Headline:
    """The headline numbers (docs/design.md#metrics): means of per-row values, corpus rates, KER's CI and n."""

    n: int
    #: None only in metrics written by another tool without the number (the gate needs just n and categories).
    wer: float | None = None
    cer: float | None = None
    ker: float | None = None
    ker_n: int = 0
    ser: float | None = None
    wer_corpus: float | None = None
    cer_corpus: float | None = None
    ker_ci_low: float | None = None
    ker_ci_high: float | None = None


@dataclass(frozen=True)
class Metrics:
    headline: Headline
    model: str = "unknown"
    cycle: int = 0
    scope: str = SCOPE_ALL
    #: Scored rows that were training rows (None: not known, the scoring was given no split).
    training_rows: int | None = None
    manifest: str = ""
    manifest_version: str = ""
    manifest_family: str = ""
    confidence: float = 0.95
    bootstrap_resamples: int = 0
    ker_by_entity_category: Breakdown = field(default_factory=dict)
    ker_by_ipa_source: Breakdown = field(default_factory=dict)
    ker_by_noise_level: Breakdown = field(default_factory=dict)
    ker_by_term: Breakdown = field(default_factory=dict)
    #: Terms seen vs unseen in training; voices heard vs not (None: the scoring was given no split).
    ker_by_seen: Breakdown | None = None
    ker_by_seen_voice: Breakdown | None = None
    #: The boost list decoding was biased toward (None: plain decoding).
    boost: BoostRef | None = None
    schema_version: int = SCHEMA_VERSION

    @property
    def includes_training_rows(self) -> bool:
        """True when these numbers were taken over rows the model trained on (count recorded, or the scope)."""
        return bool(self.training_rows) or self.scope == SCOPE_WITH_TRAINING

    def to_dict(self) -> dict:
        """The metrics.json layout: headline fields at the top level, then the rest, breakdowns as objects."""
        out: dict[str, Any] = {"schema_version": self.schema_version, **dataclasses.asdict(self.headline)}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in ("headline", "schema_version") or (value is None and f.name in _OPTIONAL):
                continue
            if f.name in _BREAKDOWNS:
                value = {k: g.to_dict() for k, g in value.items()}
            out[f.name] = value.to_dict() if isinstance(value, BoostRef) else value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str = "metrics") -> Metrics:
        """Parse a metrics.json object (any schema version so far); one `InputError` names every bad field."""
        problems = _problems(data)
        if problems:
            raise InputError(f"{source}: the gate and the decision cannot read these fields", problems)
        head = {f.name: data[f.name] for f in fields(Headline) if f.name in data}
        rest: dict[str, Any] = {}
        for f in fields(cls):
            if f.name == "headline" or f.name not in data:
                continue
            value = data[f.name]
            if value is not None and f.name in _BREAKDOWNS:
                value = _breakdown(value)
            elif value is not None and f.name == "boost":
                value = BoostRef.from_dict(value)
            rest[f.name] = value
        return cls(headline=Headline(**head), **rest)


_BREAKDOWNS = frozenset(f.name for f in fields(Metrics) if f.name.startswith("ker_by_"))
_OPTIONAL_BREAKDOWNS = frozenset(("ker_by_seen", "ker_by_seen_voice"))
#: Fields left out of metrics.json when None (a scoring without a split, or without a boost list).
_OPTIONAL = _OPTIONAL_BREAKDOWNS | {"boost"}
#: What every reader needs (the control guard reads only n and wer); a metrics.json file must also have the KER
#: fields the gate and the decision read (`load_metrics`).
_REQUIRED = ("n",)
_FILE_REQUIRED = ("n", "ker", "ker_by_entity_category", "ker_by_ipa_source")


def _breakdown(table: Mapping[str, Mapping[str, Any]]) -> Breakdown:
    names = {f.name for f in fields(KerGroup)}
    return {k: KerGroup(**{n: v for n, v in g.items() if n in names}) for k, g in table.items()}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_rate(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and 0 <= v <= 1


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _problems(data: Mapping[str, Any]) -> list[Problem]:
    """Every field the gate, the decision and the leaderboard read that is missing or of the wrong type."""
    missing = [Problem(0, k, "missing key") for k in _REQUIRED if k not in data]
    if missing:
        return missing
    problems = []
    if not _is_int(data.get("n")):
        problems.append(Problem(0, "n", f"expected a row count (integer), got {data.get('n')!r}"))
    if not _is_int(data.get("cycle", 0)):
        problems.append(Problem(0, "cycle", f"expected an integer, got {data.get('cycle')!r}"))
    problems += [
        Problem(0, k, f"expected a number, got {data[k]!r}")
        for k in ("wer", "cer", "ser", "wer_corpus", "cer_corpus")
        if data.get(k) is not None and not _is_number(data[k])
    ]
    boost = data.get("boost")
    if boost is not None and not (
        isinstance(boost, dict)
        and isinstance(boost.get("hash"), str)
        and _is_int(boost.get("count"))
        and isinstance(boost.get("weights"), dict)
        and set(boost["weights"]) <= {"alpha", "context_score", "depth_scaling"}
        and all(_is_number(v) for v in boost["weights"].values())
    ):
        problems.append(Problem(0, "boost", f"expected {{hash, count, source, weights}}, got {boost!r}"))
    for key in sorted(_BREAKDOWNS & set(data)):
        table = data[key]
        if table is None and key in _OPTIONAL_BREAKDOWNS:
            continue
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


def as_metrics(metrics: Metrics | Mapping[str, Any]) -> Metrics:
    """The record itself, or one parsed from a metrics.json object (a caller holding JSON, e.g. a test)."""
    return metrics if isinstance(metrics, Metrics) else Metrics.from_dict(metrics)


def load_metrics(path: str | Path) -> Metrics:
    """Read and check a metrics.json: a missing, unreadable or foreign file is an `InputError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"metrics file not found: {p}")
    try:
        data = fio.read_json(p)
    except Exception as exc:
        raise InputError(f"{p} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"{p} is not a flywheel metrics.json: expected a JSON object, got {type(data).__name__}")
    missing = [Problem(0, k, "missing key") for k in _FILE_REQUIRED if k not in data]
    if missing:
        raise InputError(f"{p} is not a flywheel metrics.json", missing)
    return Metrics.from_dict(data, source=str(p))


def pooled_ker(breakdown: Mapping[str, KerGroup], keys: Iterable[str]) -> tuple[float | None, int]:
    """KER over the union of some breakdown groups (e.g. all priority categories), weighted by n."""
    groups = [g for k in keys if (g := breakdown.get(k)) is not None and g.n]
    n = sum(g.n for g in groups)
    return (sum(g.ker * g.n for g in groups) / n if n else None), n
