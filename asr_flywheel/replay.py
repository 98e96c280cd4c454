"""Replay against forgetting: mix general-English rows into a split's train.jsonl before training.

Fine-tuning a small general base on clinical rows alone tripled its general-English WER in the feasibility
run (the demo config records the runs); mixing general rows back in cuts the rise. `replay_fraction` is the share
of the *mixed* training set that is replay rows: 0.5 means as many general rows as clinical ones.

Rules:
* control rows never train: a replay row whose audio or normalised text is in the control manifest is
  skipped (the control set measures forgetting, so it must stay unseen);
* the choice is a seeded sample in manifest order, so the same inputs give the same train.jsonl;
* the clinical rows are kept in `train_unmixed.jsonl`, so mixing again (a resumed cycle, another fraction)
  starts from them and never mixes replay into replay;
* `replay.json` records what was mixed, with the hash of the train.jsonl it produced: a record that no longer
  matches train.jsonl (the split was rewritten) is stale and ignored.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import asdict, dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError
from asr_flywheel.normalize import normalize_many
from asr_flywheel.split import TRAIN_FILE
from asr_flywheel.validation import load_manifest, validate_manifest

REPLAY_RECORD = "replay.json"
UNMIXED_FILE = "train_unmixed.jsonl"


@dataclass(frozen=True)
class ReplayRecord:
    """What was mixed into train.jsonl; copied into `training_run_info.json` by the trainers."""

    source: str
    source_version: str
    fraction: float
    seed: int
    #: Replay rows actually mixed in (fewer than requested when the replay manifest is too small).
    rows_mixed: int
    rows_requested: int
    clinical_rows: int
    #: Replay rows skipped because they are control rows (same audio or same normalised text).
    excluded_control_rows: int
    control: str | None
    train_sha256: str
    unmixed_sha256: str

    def to_dict(self) -> dict:
        return asdict(self)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def replay_count(clinical_rows: int, fraction: float) -> int:
    """Replay rows needed so that they make up `fraction` of the mixed set."""
    if not 0 <= fraction < 1:
        raise InputError(f"replay_fraction must be in [0, 1), got {fraction}")
    return round(clinical_rows * fraction / (1 - fraction))


def choose_replay_rows(
    rows: list[dict], n: int, seed: int, control_audio: set[str], control_text: set[str]
) -> tuple[list[dict], int]:
    """(a seeded sample of `n` rows that are not control rows, number of control rows skipped)."""
    texts = normalize_many([r["text"] for r in rows])
    eligible = [
        r
        for r, t in zip(rows, texts, strict=True)
        if r["audio_filepath"] not in control_audio and t not in control_text
    ]
    chosen = random.Random(seed).sample(eligible, min(n, len(eligible)))
    return chosen, len(rows) - len(eligible)


def _control_sets(control_manifest: str | Path | None, cfg: FlywheelConfig) -> tuple[set[str], set[str]]:
    if not control_manifest:
        return set(), set()
    control = load_manifest(control_manifest, cfg, check_audio=False)
    return set(control.audio_paths), set(normalize_many(control.column("text")))


def _clinical_rows(split: Path) -> list[dict]:
    """The split's own training rows: train_unmixed.jsonl when train.jsonl is a mix this module wrote."""
    record = read_replay_record(split)
    unmixed = split / UNMIXED_FILE
    if record is not None and unmixed.is_file() and _sha256(unmixed) == record.unmixed_sha256:
        return fio.read_jsonl(unmixed)
    return fio.read_jsonl(split / TRAIN_FILE)


def mix_replay(
    split_dir: str | Path,
    replay_manifest: str | Path | None,
    fraction: float,
    seed: int,
    *,
    control_manifest: str | Path | None = None,
    config: FlywheelConfig | None = None,
) -> ReplayRecord | None:
    """Rewrite `split_dir/train.jsonl` as clinical rows + replay rows (shuffled with `seed`); None = no replay.

    Called by the train step before the trainer runs. Bad replay rows (missing audio, empty text) are an
    InputError naming every one, before any compute.
    """
    cfg = config or FlywheelConfig()
    split = Path(split_dir)
    clinical = _clinical_rows(split)
    n_wanted = replay_count(len(clinical), fraction)  # validates the fraction first
    if fraction == 0 or not replay_manifest:
        if fraction > 0:
            raise InputError("replay_fraction > 0 needs a replay_manifest ([train] replay_manifest)")
        _unmix(split, clinical)
        return None
    report = validate_manifest(replay_manifest, cfg, check_audio=True)
    source = report.raise_if_invalid()
    durations = {a: i.duration for a, i in report.audio.items()}
    audio, text = _control_sets(control_manifest, cfg)
    chosen, excluded = choose_replay_rows(source.resolved_rows(durations), n_wanted, seed, audio, text)
    mixed = [*clinical, *({**r, "replay": True} for r in chosen)]
    random.Random(seed).shuffle(mixed)
    unmixed = fio.write_jsonl(split / UNMIXED_FILE, clinical)
    train = fio.write_jsonl(split / TRAIN_FILE, mixed)
    record = ReplayRecord(
        source=str(Path(replay_manifest).resolve()),
        source_version=source.version,
        fraction=fraction,
        seed=seed,
        rows_mixed=len(chosen),
        rows_requested=n_wanted,
        clinical_rows=len(clinical),
        excluded_control_rows=excluded,
        control=str(Path(control_manifest).resolve()) if control_manifest else None,
        train_sha256=_sha256(train),
        unmixed_sha256=_sha256(unmixed),
    )
    fio.write_json(split / REPLAY_RECORD, record.to_dict())
    return record


def _unmix(split: Path, clinical: list[dict]) -> None:
    """Restore the clinical-only train.jsonl when replay is turned off after a mixed run."""
    if (split / REPLAY_RECORD).exists():
        fio.write_jsonl(split / TRAIN_FILE, clinical)
        (split / REPLAY_RECORD).unlink()
        (split / UNMIXED_FILE).unlink(missing_ok=True)


def read_replay_record(split_dir: str | Path) -> ReplayRecord | None:
    """The replay record of a split directory, or None when there is none or train.jsonl no longer matches it."""
    split = Path(split_dir)
    path, train = split / REPLAY_RECORD, split / TRAIN_FILE
    if not path.is_file() or not train.is_file():
        return None
    record = ReplayRecord(**fio.read_json(path))
    return record if _sha256(train) == record.train_sha256 else None
