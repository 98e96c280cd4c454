"""File-based model registry: every trained model with its lineage, and which one is the champion.

One JSON document (`registry.json`) rewritten atomically under an exclusive lock, so concurrent cycles
never lose each other's entries. Champion changes are appended to a history, which is what rollback reads.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.errors import InputError


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

    @classmethod
    def from_dict(cls, d: dict) -> ModelRecord:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)


class Registry:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.path = self.root / "registry.json"

    @contextlib.contextmanager
    def _locked(self) -> Iterator[dict]:
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / "registry.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
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

    def promote(self, model_id: str, reason: str) -> ModelRecord:
        rec = self.get(model_id)
        with self._locked() as data:
            data["champion"] = model_id
            data["champion_history"].append(
                {"model_id": model_id, "reason": reason, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
            )
        return rec

    def champion_history(self) -> list[dict]:
        return list(self._read()["champion_history"])
