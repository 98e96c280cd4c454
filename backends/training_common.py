"""What every training backend shares: the preamble before compute, the checkpoint fingerprint and the run-info
record (`training_run_info.json`).

One module, so the NeMo and Hugging Face backends cannot drift apart on what they refuse, when they resume
and what they record. Light: importing it never loads torch.
"""

from __future__ import annotations

import hashlib
import json
import platform
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel import __version__ as flywheel_version
from asr_flywheel import io as fio
from asr_flywheel.plugins.catalogue import check_sft_request
from asr_flywheel.plugins.contracts import TrainRequest
from asr_flywheel.replay import read_replay_record

RUN_INFO = "training_run_info.json"


def preamble(request: TrainRequest, merge: Callable[[dict], dict]) -> tuple[dict, Path]:
    """(merged hyperparameters, output directory), refusing known-bad requests before any compute.

    The caller resolved `request.base_model`; the refusal is checked again here because a plugin's trainer
    can be called directly, without `flywheel train`.
    """
    entry = request.base_model
    check_sft_request(request.base, entry.decoder, request.method, entry)
    hp = merge(request.hyperparameters)
    out = Path(request.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return hp, out


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fingerprint(weights: str, hp: dict, train_manifest: str | Path) -> str:
    """Names the checkpoint directory of a run: a killed run resumes only into the same weights, hyperparameters
    and training rows (content, not just path: replay rewrites train.jsonl in place)."""
    key = [weights, hp, str(train_manifest), file_sha256(train_manifest)]
    return hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:16]


def manifest_stats(path: str | Path) -> dict:
    rows = fio.read_jsonl(path)
    cats: dict[str, int] = {}
    for r in rows:
        c = r.get("entity_category") or "(none)"
        cats[c] = cats.get(c, 0) + 1
    return {
        "rows": len(rows),
        "hours": round(sum(float(r.get("duration") or 0) for r in rows) / 3600, 4),
        "categories": cats,
    }


def base_versions(**extra: str) -> dict:
    import torch

    return {"flywheel": flywheel_version, "torch": torch.__version__, "python": platform.python_version(), **extra}


@dataclass
class RunInfo:
    """The record of one fine-tuning run, written as `training_run_info.json` next to the model.

    The registry reads `backend`, `hyperparameters`, `metrics` and `architecture.decoder` from it; `extra`
    holds what only one backend knows (container command, eval history, ...) and is written at top level.
    """

    backend: str
    base_model: str
    weights: str
    method: str
    recipe: str
    architecture: dict
    hyperparameters: dict
    dataset: dict
    metrics: dict
    resumed_from_checkpoint: bool
    timings: dict
    versions: dict
    device: str
    #: General-English rows mixed into train.jsonl against forgetting (None when none were).
    replay: dict | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        d = asdict(self)
        d.update(d.pop("extra"))
        return d

    def write(self, out_dir: Path) -> Path:
        return fio.write_json(Path(out_dir) / RUN_INFO, self.to_dict())


def dataset_record(request: TrainRequest) -> tuple[dict, dict | None]:
    """(train/validation statistics, replay record of the split directory or None)."""
    replay = read_replay_record(Path(request.train_manifest).parent)
    stats = {"train": manifest_stats(request.train_manifest), "validation": manifest_stats(request.validation_manifest)}
    return stats, (replay.to_dict() if replay else None)
