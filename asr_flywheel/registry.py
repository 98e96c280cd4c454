"""File-based model registry: every trained model with its lineage, and which one is the champion.

One JSON document (`registry.json`) rewritten atomically under an exclusive lock (`filelock`), so concurrent
cycles never lose each other's entries. Champion changes are appended to a history, which is what rollback reads.

A trained model enters as a candidate. It becomes the champion only through `promote`, which a cycle calls after
a KEEP decision and, where required, a human approval and a successful deploy (`promotion_due`). A rejected
candidate keeps its entry with who rejected it and why; the champion does not change.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import cast

from filelock import FileLock

from asr_flywheel import io as fio
from asr_flywheel.cycle import StartingPoint
from asr_flywheel.errors import FlywheelError, InputError


@dataclass
class ModelRecord:
    model_id: str
    path: str
    backend: str
    base_model: str
    parent: str | None
    manifest_version: str
    manifest_family: str
    cycle: int
    hyperparameters: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    decision: str | None = None
    architecture: str | None = None
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    #: A human's verdict when approval is required: {"approved", "reviewer", "reason", "at"}.
    review: dict | None = None
    #: The boost list this model decodes with (`BoostList.to_dict()`: hash, count, source, weights, phrases), when
    #: the cycle kept it boosted (a BOOST, or a fine-tune that was better boosted); None: plain decoding.
    boost: dict | None = None

    @classmethod
    def from_dict(cls, d: dict) -> ModelRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


#: `Registry.promote(replacing=ANY)`: promote whatever the champion is now.
ANY = object()


class Superseded(FlywheelError):
    """The champion changed since the candidate's cycle started: promoting it would undo a newer champion."""

    def __init__(self, model_id: str, started_from: str | None, champion: str | None):
        self.model_id, self.started_from, self.champion = model_id, started_from, champion
        super().__init__(
            f"{model_id} was not promoted: it was trained from {started_from or 'the base model'}, but the champion "
            f"is now {champion or 'none'} (a later cycle replaced it)"
        )


def champion_unchanged(registry: Registry, started_from: str | None) -> bool:
    """Whether the champion is still the one a cycle started from (None: the base model, no champion yet)."""
    current = registry.champion()
    return (current.model_id if current else None) == started_from


def promotion_due(keep: bool, *, approval_required: bool, approved: bool | None) -> bool:
    """A candidate becomes champion on KEEP, and, when approval is required, only once a human approved it."""
    return keep and (approved is True or not approval_required)


class Registry:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.path = self.root / "registry.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / "registry.lock"):
            data = self._read()
            yield data
            fio.write_json(self.path, data)

    def _read(self) -> dict:
        if not self.path.exists():
            return {"models": [], "champion": None, "champion_history": []}
        return fio.read_json(self.path)

    def models(self) -> list[ModelRecord]:
        return [ModelRecord.from_dict(m) for m in self._read()["models"]]

    def get(self, model_id: str) -> ModelRecord:
        for m in self.models():
            if m.model_id == model_id:
                return m
        raise InputError(f"no model {model_id!r} in the registry at {self.path}")

    def register(self, **fields) -> ModelRecord:
        fields.setdefault("model_id", f"cycle{int(fields.get('cycle', 0)):04d}-{uuid.uuid4().hex[:8]}")
        rec = ModelRecord(**fields)
        with self._locked() as data:
            if any(m["model_id"] == rec.model_id for m in data["models"]):
                raise InputError(f"model id {rec.model_id!r} is already registered")
            data["models"].append(asdict(rec))
        return rec

    def champion(self) -> ModelRecord | None:
        data = self._read()
        cid = data.get("champion")
        return self.get(cid) if cid else None

    def starting_point(self, base_model: str, backend: str | None = None) -> StartingPoint:
        """What a cycle starts from: the champion (with its own backend), else `base_model` with `backend`."""
        champion = self.champion()
        if champion is not None:
            return StartingPoint(champion.path, champion.backend or backend or None, champion.model_id)
        return StartingPoint(base_model, backend or None, None)

    def promote(self, model_id: str, reason: str, *, replacing: str | object | None = ANY) -> ModelRecord:
        """Make `model_id` the champion. With `replacing` (the champion the candidate started from; None = no
        champion), only while that is still the champion, checked under the lock: a late approval of an older
        candidate never overwrites a champion kept since (`Superseded`)."""
        rec = self.get(model_id)
        with self._locked() as data:
            if replacing is not ANY and data.get("champion") != replacing:
                raise Superseded(model_id, cast("str | None", replacing), data.get("champion"))
            data["champion"] = model_id
            data["champion_history"].append(
                {"model_id": model_id, "reason": reason, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            )
        return rec

    def review(self, model_id: str, *, approved: bool, reviewer: str, reason: str) -> ModelRecord:
        """Record a human's approval or rejection of a candidate (a rejection leaves the champion as it is)."""
        self.get(model_id)
        verdict = {
            "approved": approved,
            "reviewer": reviewer,
            "reason": reason,
            "at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        with self._locked() as data:
            for m in data["models"]:
                if m["model_id"] == model_id:
                    m["review"] = verdict
        return self.get(model_id)

    def champion_history(self) -> list[dict]:
        return list(self._read()["champion_history"])
