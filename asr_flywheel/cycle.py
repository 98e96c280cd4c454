"""Cycle directories: one per cycle under the workspace, claimed exclusively, resumable step by step.

A cycle number is claimed by creating its directory (`mkdir` is atomic), and a running cycle holds an
exclusive lock on `<cycle>/.lock` (`filelock`: released when the process dies, portable off Linux), so two
runs never write the same directory. `cycle.json` records the manifest version, the starting model, each
finished step and its outputs; a rerun reads it and skips finished steps. That record is the only resume
mechanism of the flywheel (Prefect task results are not persisted: their default cache key includes the run id).

The rules a cycle follows that are not orchestration live here: which manifest version to cycle, which model a
cycle starts from and when a retry may change it, whether to deploy, and which earlier records form the history.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from filelock import FileLock, Timeout

from asr_flywheel import io as fio
from asr_flywheel.errors import FlywheelError, InputError

if TYPE_CHECKING:
    from asr_flywheel.config import FlywheelConfig
    from asr_flywheel.manifest import Manifest
    from asr_flywheel.validation import ValidationReport

_CYCLE_RE = re.compile(r"^cycle-(\d{4,})$")

#: The step after which a cycle's starting model is fixed: a retry before it may start from corrected inputs.
COMMITTING_STEP = "train"


class CycleBusyError(FlywheelError):
    """Another process is writing this cycle directory."""


class WorkspaceBusyError(InputError):
    """Another cycle of this workspace is running, and this run was asked not to queue behind it (exit 2)."""


@dataclass
class Turn:
    """A workspace's one-cycle-at-a-time lock, held from the claim until the candidate is registered (a candidate
    waiting for a human's approval does not hold up the next cycle). `release` is idempotent."""

    lock: FileLock
    owner: Path

    def say(self, holder: str) -> None:
        """Update who holds the turn (the run's name is known fully only after the claim)."""
        if self.lock.is_locked:
            self.owner.write_text(holder + "\n")

    def release(self) -> None:
        if self.lock.is_locked:
            self.owner.unlink(missing_ok=True)
            self.lock.release()


def now() -> str:
    """Wall-clock timestamp with offset (recorded for humans; ordering uses file records, not clocks)."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass(frozen=True)
class ManifestRef:
    """A manifest version: path + row count + content hash. Every step re-reads exactly these rows."""

    path: str
    version: str
    rows: int

    def report(self, cfg: FlywheelConfig, *, check_audio: bool = True) -> ValidationReport:
        """This version's rows (validated) and, when checked, their audio headers."""
        from asr_flywheel.validation import load_manifest_version

        return load_manifest_version(self.path, self.version, self.rows, cfg, check_audio=check_audio)

    def load(self, cfg: FlywheelConfig, *, check_audio: bool = False) -> Manifest:
        return self.report(cfg, check_audio=check_audio).manifest


def version_to_cycle(
    manifest: str | os.PathLike, cfg: FlywheelConfig, *, content_hash: str = "", rows: int = 0
) -> tuple[ManifestRef, str | None]:
    """The version a cycle works on, and a warning when the announced one is gone.

    The announced version (from a growth event) wins while the file still holds it: manifests only grow by
    appending, so its first `rows` rows are that version even after later growth. Otherwise the file's current
    content, which must be valid as a whole.
    """
    from asr_flywheel.validation import load_manifest_version, validate_manifest

    path = str(Path(manifest).resolve())
    report = validate_manifest(path, cfg)
    current = report.manifest
    warning = None
    if content_hash and content_hash != current.version and 0 < rows <= len(current):
        try:
            load_manifest_version(path, content_hash, rows, cfg)
            return ManifestRef(path, content_hash, rows), None
        except FlywheelError as exc:
            warning = (
                f"announced version {content_hash[:12]}… is not in the file any more ({exc}): "
                "cycling the current content"
            )
    report.raise_if_invalid()
    return ManifestRef(path, current.version, len(current)), warning


def deploy_target(configured: str, requested: bool | None) -> str:
    """The deployer a cycle uses ("" = none): the configured one unless the run says no; asking for a deploy
    with no deployer configured is an error before any work."""
    if requested and not configured:
        raise InputError("deploying was requested but no deployer is configured (`[cycle] deployer`)")
    return configured if requested is None or requested else ""


@dataclass(frozen=True)
class StartingPoint:
    """The model a cycle fine-tunes and scores first, and the registry entry it descends from."""

    model: str
    backend: str | None
    parent: str | None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class CycleDir:
    path: Path
    number: int

    # Well-known locations (docs/design.md#cycle-artifacts artifact names live inside these).
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
    def boost_dir(self) -> Path:
        """The starting model scored with the manifest's terms boosted (`[cycle] boost`), and its decision."""
        return self.path / "boosted"

    @property
    def after_boosted_dir(self) -> Path:
        """The fine-tuned candidate scored with the boost list too (`[cycle] boost = "always"`)."""
        return self.path / "after_boosted"

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

    def starting_point(self, proposed: StartingPoint) -> tuple[StartingPoint, bool]:
        """The model this run of the cycle starts from, and whether earlier progress was discarded for it.

        Once training finished the recorded start is fixed (a resumed run never switches models midway). Before
        that, a retry with corrected inputs (another `--base`, a new champion) starts over from the new model:
        the steps finished for the old one scored a different model and are dropped.
        """
        rec = self.read_record()
        recorded = rec.get("start")
        if recorded and (COMMITTING_STEP in rec.get("steps", {}) or recorded == proposed.to_dict()):
            return StartingPoint(**recorded), False
        discarded = bool(recorded and rec.get("steps"))
        if discarded:
            rec["discarded"] = [
                *rec.get("discarded", []),
                {"start": recorded, "steps": sorted(rec["steps"]), "at": now()},
            ]
        rec.update(start=proposed.to_dict(), steps={}, running={}, updated_at=now())
        fio.write_json(self.record_path, rec)
        return proposed, discarded

    @property
    def complete(self) -> bool:
        return self.read_record().get("status") == "complete"

    @contextlib.contextmanager
    def lock(self) -> Iterator[CycleDir]:
        """Exclusive claim on this directory for the duration of a run (released on exit or process death)."""
        self.path.mkdir(parents=True, exist_ok=True)
        owner = self.path / ".lock.owner"
        lock = FileLock(self.path / ".lock", timeout=0)
        try:
            lock.acquire()
        except Timeout:
            holder = owner.read_text().strip() if owner.exists() else "unknown"
            raise CycleBusyError(f"{self.path} is being written by another run (pid {holder})") from None
        try:
            owner.write_text(str(os.getpid()))
            yield self
        finally:
            lock.release()


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

    @property
    def charts_dir(self) -> Path:
        return self.root / "charts"

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

    def history(self, filename: str, *, exclude: CycleDir | None = None) -> list[dict]:
        """Earlier `filename` records (gate.json / decision.json) of this workspace, oldest first: the history the
        gate and the decision table read. A cycle never counts as its own history (a resumed run rewrites it)."""
        from asr_flywheel.gate import history_records

        if not self.cycles_dir.is_dir():
            return []
        records = history_records(self.cycles_dir, filename)
        if exclude is None:
            return records
        return [r for r in records if Path(r["_path"]).parent != exclude.path]

    @property
    def claims_dir(self) -> Path:
        return self.root / "claims"

    def control_dir(self, model: str, control_version: str, boost_hash: str | None = None) -> Path:
        """Where `model`'s score on a control-manifest version is kept, shared by every cycle of the workspace: a
        champion's control score (the candidate's "after" of the cycle that kept it) is the next cycle's "before",
        never recomputed. The key includes the model file's size and mtime, so a model rewritten in place is
        scored again."""
        import hashlib

        p = Path(model)
        stamp = f"{p.stat().st_size}:{p.stat().st_mtime_ns}" if p.exists() else "name"
        boosted = f"|boost {boost_hash}" if boost_hash else ""  # the same weights decoding with a list: another score
        key = hashlib.sha256(f"{p.resolve() if p.exists() else model}|{stamp}|{control_version}{boosted}".encode())
        return self.root / "control" / key.hexdigest()[:20]

    def take_turn(self, holder: str, *, wait: bool, report: Callable[[str], None], every_s: float = 30.0) -> Turn:
        """One cycle at a time per workspace, whatever started it (event, schedule, manual run, CLI). With `wait`
        a later run queues, saying every `every_s` who it waits for; without, it is refused naming the holder. The
        lock is a file lock: a holder that dies releases it with its process."""
        self.root.mkdir(parents=True, exist_ok=True)
        owner = self.root / ".cycle-turn.owner"
        lock = FileLock(self.root / ".cycle-turn.lock", timeout=every_s if wait else 0, thread_local=False)
        while True:
            try:
                lock.acquire()
                break
            except Timeout:
                who = owner.read_text().strip() if owner.exists() else "a holder that has not said who it is yet"
                busy = f"workspace {self.root} runs one cycle at a time, and another is running: {who}"
                if not wait:
                    raise WorkspaceBusyError(f"{busy}; rerun when it finishes, or pass --wait to queue") from None
                report(f"queued: {busy}")
        owner.write_text(holder + "\n")
        return Turn(lock, owner)

    def claim_version(self, version: str, manifest: str, *, again: bool = False, **info) -> Claim:
        """Claim `version` for exactly one cycle (an exclusive lock serialises concurrent claimers).

        The claim records which cycle owns the version and nothing about how to run it: a failed cycle stays
        open ("resume") and a retry may bring corrected inputs (see `CycleDir.starting_point`). `again` (a
        forced publication) gives a version whose cycle completed a new cycle; the earlier ones are listed.
        """
        self.claims_dir.mkdir(parents=True, exist_ok=True)
        path = self.claims_dir / f"{version}.json"
        with FileLock(self.claims_dir / ".lock"):
            earlier = fio.read_json(path) if path.exists() else None
            if earlier is None or (again and self.cycle(int(earlier["cycle"])).complete):
                cycle = self.new_cycle()
                record = {
                    "manifest_version": version,
                    "manifest": manifest,
                    "cycle": cycle.number,
                    "claimed_at": now(),
                    **info,
                }
                if earlier is not None:
                    record["earlier_cycles"] = [*earlier.get("earlier_cycles", []), int(earlier["cycle"])]
                fio.write_json(path, record)
                return Claim(cycle, "new", record)
        cycle = self.cycle(int(earlier["cycle"]))
        return Claim(cycle, "done" if cycle.complete else "resume", earlier)

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


def require_writable_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Refuse an output location that is a file or cannot be created/written, before any compute is spent."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise InputError(f"{what} {p} is a file; give a directory")
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not _can_create_in(probe):
        raise InputError(f"{what} {p} is not writable ({probe} does not allow creating files)")
    return p


def _can_create_in(directory: Path) -> bool:
    """Really create (and remove) a file: os.access says yes to root everywhere, even in /proc or /sys."""
    try:
        with tempfile.TemporaryFile(dir=directory):
            return True
    except OSError:
        return False
