"""Loading models and transcribing rows: one model per process, shared by the shards a worker runs."""

from __future__ import annotations

import threading
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.manifest import Manifest
from asr_flywheel.plugins.contracts import LoadedModel, ProgressFn
from asr_flywheel.plugins.manager import Plugins

OFFLINE_HYPS = "offline_hyps.jsonl"

_MODELS: dict[tuple[str, str | None], _SerialModel] = {}
_MODELS_LOCK = threading.Lock()


class _SerialModel:
    """One loaded model shared by the shards of a worker process, used by one thread at a time.

    Backends are not thread-safe (NeMo's transcribe freezes and unfreezes modules) and torch already spreads
    one call over every core, so shards parallelise across processes (Dask/Ray workers), not threads.
    """

    def __init__(self, model: LoadedModel):
        self._model = model
        self._lock = threading.Lock()
        self.name, self.decoder = model.name, model.decoder

    def transcribe(self, audio_paths, *, batch_size: int = 16, progress: ProgressFn | None = None) -> list[str]:
        with self._lock:
            return self._model.transcribe(audio_paths, batch_size=batch_size, progress=progress)


def load_model(model_ref: str, backend: str | None = None) -> LoadedModel:
    """Load a model once per process (transcription shards running in one worker share it)."""
    key = (model_ref, backend)
    with _MODELS_LOCK:
        if key not in _MODELS:
            _MODELS[key] = _SerialModel(Plugins().transcriber_for(model_ref, backend).load(model_ref))
        return _MODELS[key]


def release_models() -> None:
    """Drop cached models (end of a cycle) so a long-lived worker does not hold every model it ever loaded."""
    with _MODELS_LOCK:
        _MODELS.clear()


def transcribe_shard(*, model_ref: str, backend: str | None, audio_paths: list[str], batch_size: int) -> list[str]:
    """One shard of a cycle's transcription (the unit a task runner distributes)."""
    hyps = load_model(model_ref, backend).transcribe(audio_paths, batch_size=batch_size)
    if len(hyps) != len(audio_paths):
        raise RuntimeError(f"backend returned {len(hyps)} transcripts for {len(audio_paths)} rows")
    return hyps


def transcribe_rows(
    manifest: Manifest,
    model_ref: str,
    *,
    batch_size: int = 16,
    backend: str | None = None,
    progress: ProgressFn | None = None,
) -> list[str]:
    """Offline, batched transcription of every manifest row (in row order)."""
    hyps = load_model(model_ref, backend).transcribe(manifest.audio_paths, batch_size=batch_size, progress=progress)
    if len(hyps) != len(manifest):
        raise RuntimeError(f"backend returned {len(hyps)} transcripts for {len(manifest)} rows")
    return hyps


def write_hyps(path: Path, manifest: Manifest, hyps: list[str]) -> Path:
    return fio.write_jsonl(
        path, [{"audio_filepath": a, "hyp": h} for a, h in zip(manifest.audio_paths, hyps, strict=True)]
    )
