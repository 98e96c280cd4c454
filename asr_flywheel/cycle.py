"""Cycle directories: one per cycle under the workspace, claimed exclusively, resumable step by step.

A cycle number is claimed by creating its directory (`mkdir` is atomic), and a running cycle holds an
exclusive `flock` on `<cycle>/.lock`, so two runs never write the same directory. `cycle.json` records
the manifest version, each finished step and its outputs; a rerun reads it and skips finished steps.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.errors import FlywheelError

_CYCLE_RE = re.compile(r"^cycle-(\d{4,})$")


class CycleBusyError(FlywheelError):
    """Another process is writing this cycle directory."""


def now() -> str:
    """Wall-clock timestamp with offset (recorded for humans; ordering uses file records, not clocks)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class CycleDir:
    path: Path
    number: int

    # Well-known locations (SPEC §3.2 artifact names live inside these).
    @property
    def baseline_dir(self) -> Path:
        return self.path / "baseline"

    @property
    def split_dir(self) -> Path:
        return self.path / "split"

    @property
    def model_dir(self) -> Path:
        return self.path / "model"

    @property
    def after_dir(self) -> Path:
        return self.path / "after"

    @property
    def record_path(self) -> Path:
        return self.path / "cycle.json"

    def read_record(self) -> dict:
        if not self.record_path.exists():
            return {"cycle": self.number, "steps": {}}
        return fio.read_json(self.record_path)

    def update_record(self, **fields) -> dict:
        rec = self.read_record()
        rec.update(fields)
        rec.setdefault("cycle", self.number)
        rec["updated_at"] = now()
        fio.write_json(self.record_path, rec)
        return rec

    def step(self, name: str) -> dict | None:
        """The recorded result of a finished step, or None."""
        return self.read_record().get("steps", {}).get(name)

    def start_step(self, name: str) -> None:
        rec = self.read_record()
        rec.setdefault("running", {})[name] = now()
        fio.write_json(self.record_path, rec)

    def finish_step(self, name: str, result: dict) -> None:
        rec = self.read_record()
        rec.setdefault("steps", {})[name] = {**result, "finished_at": now()}
        rec.get("running", {}).pop(name, None)
        rec["updated_at"] = now()
        fio.write_json(self.record_path, rec)

    @property
    def complete(self) -> bool:
        return self.read_record().get("status") == "complete"

    @contextlib.contextmanager
    def lock(self) -> Iterator[CycleDir]:
        """Exclusive claim on this directory for the duration of a run (released on exit or process death)."""
        self.path.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                raise CycleBusyError(f"{self.path} is being written by another run (pid {holder})") from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
            yield self
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Claim:
    """Which cycle owns a manifest version. status: "new" (just claimed), "resume" (an earlier run of this
    version did not finish), or "done" (already processed: never start a second cycle for it)."""

    cycle: CycleDir
    status: str
    record: dict


class Workspace:
    """The root holding `cycles/` and `registry/`."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root).expanduser().resolve()

    @property
    def cycles_dir(self) -> Path:
        return self.root / "cycles"

    @property
    def registry_dir(self) -> Path:
        return self.root / "registry"

    def cycles(self) -> list[CycleDir]:
        if not self.cycles_dir.is_dir():
            return []
        found = []
        for p in self.cycles_dir.iterdir():
            m = _CYCLE_RE.match(p.name)
            if m and p.is_dir():
                found.append(CycleDir(p, int(m.group(1))))
        return sorted(found, key=lambda c: c.number)

    def cycle(self, number: int) -> CycleDir:
        return CycleDir(self.cycles_dir / f"cycle-{number:04d}", number)

    @property
    def claims_dir(self) -> Path:
        return self.root / "claims"

    def claim_version(self, version: str, manifest: str, **info) -> Claim:
        """Claim `version` for exactly one cycle (an exclusive lock serialises concurrent claimers)."""
        self.claims_dir.mkdir(parents=True, exist_ok=True)
        path = self.claims_dir / f"{version}.json"
        with open(self.claims_dir / ".lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not path.exists():
                cycle = self.new_cycle()
                record = {
                    "manifest_version": version,
                    "manifest": manifest,
                    "cycle": cycle.number,
                    "claimed_at": now(),
                    **info,
                }
                fio.write_json(path, record)
                return Claim(cycle, "new", record)
        record = fio.read_json(path)
        cycle = self.cycle(int(record["cycle"]))
        return Claim(cycle, "done" if cycle.complete else "resume", record)

    def new_cycle(self, start: int = 1) -> CycleDir:
        """Claim the next free cycle number atomically (safe against concurrent claimers)."""
        self.cycles_dir.mkdir(parents=True, exist_ok=True)
        existing = self.cycles()
        n = max([start - 1, *(c.number for c in existing)]) + 1
        while True:
            c = self.cycle(n)
            try:
                c.path.mkdir()
                return c
            except FileExistsError:
                n += 1
