"""Loading models and transcribing rows: one model per process, shared by the shards a worker runs."""

from __future__ import annotations

import threading
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostList
from asr_flywheel.errors import InputError
from asr_flywheel.manifest import Manifest
from asr_flywheel.plugins.contracts import LoadedModel, ProgressFn, Transcriber
from asr_flywheel.plugins.manager import PluginError, Plugins

OFFLINE_HYPS = "offline_hyps.jsonl"

_MODELS: dict[tuple[str, str | None, str | None], _SerialModel] = {}
_MODELS_LOCK = threading.Lock()


class _SerialModel:
    """One loaded model shared by the shards of a worker process, used by one thread at a time.

    Backends are not thread-safe (NeMo's transcribe freezes and unfreezes modules) and torch already spreads
    one call over every core, so shards parallelise across processes (Dask/Ray workers), not threads.
    """

    def __init__(self, model: LoadedModel, backend: str):
        self.model = model
        self._model = model
        self._lock = threading.Lock()
        self.name, self.decoder, self.backend = model.name, model.decoder, backend

    def transcribe(self, audio_paths, *, batch_size: int = 16, progress: ProgressFn | None = None) -> list[str]:
        with self._lock:
            hyps = self._model.transcribe(audio_paths, batch_size=batch_size, progress=progress)
        return check_transcripts(hyps, len(audio_paths), self)


def check_transcripts(hyps: object, clips: int, model: _SerialModel) -> list[str]:
    """The transcriber contract (a list of str, one per clip, in order), checked on every call: a plugin that
    returns its own hypothesis objects is named on the first batch, not after the whole manifest."""
    if isinstance(hyps, list) and len(hyps) == clips and all(isinstance(h, str) for h in hyps):
        return hyps
    if not isinstance(hyps, list):
        got = f"a {type(hyps).__name__}"
    else:
        kinds = sorted({type(h).__name__ for h in hyps})
        got = f"a list of {len(hyps)} ({', '.join(kinds) or 'nothing'})"
    raise PluginError(
        f"transcriber {model.backend!r} (model {model.name}) broke the contract: transcribe() returned {got} for "
        f"{clips} clip(s); it must return a list of str, one per clip (see docs/plugins.md)"
    )


def load_model(model_ref: str, backend: str | None = None, boost: BoostList | None = None) -> LoadedModel:
    """Load a model once per process (transcription shards running in one worker share it); with `boost`, one that
    decodes with that list (a separate instance: the plain model's transcripts never change under it)."""
    key = (model_ref, backend, boost.hash if boost else None)
    with _MODELS_LOCK:
        if key not in _MODELS:
            transcriber = Plugins().transcriber_for(model_ref, backend)
            loaded = transcriber.load(model_ref) if boost is None else boosted_load(transcriber)(model_ref, boost)
            if not callable(getattr(loaded, "transcribe", None)):
                raise PluginError(
                    f"transcriber {transcriber.name!r}: load({model_ref!r}) returned {type(loaded).__name__}, which "
                    "has no transcribe(); it must return a LoadedModel (see docs/plugins.md)"
                )
            _MODELS[key] = _SerialModel(loaded, transcriber.name)
        return _MODELS[key]


def boosted_load(transcriber: Transcriber):
    """The transcriber's optional `load_boosted`, or an `InputError` naming it: a boost list is never ignored."""
    load = getattr(transcriber, "load_boosted", None)
    if not callable(load):
        raise InputError(
            f"transcriber {transcriber.name!r} cannot boost phrases (it has no load_boosted, see docs/plugins.md): "
            "score without --boost, or with a backend that boosts (nemo)"
        )
    return load


def check_boost(model_ref: str, backend: str | None, boost: BoostList | None) -> None:
    """Refuse a boost list for a model whose transcriber cannot boost, before any work (no model is loaded)."""
    if boost is not None:
        require_boosting(model_ref, backend)


def require_boosting(model_ref: str, backend: str | None) -> None:
    """`model_ref`'s transcriber can decode with a boost list (`[cycle] boost` checks this before any compute)."""
    boosted_load(Plugins().transcriber_for(model_ref, backend))


def release_models() -> None:
    """Drop cached models (end of a cycle) so a long-lived worker does not hold every model it ever loaded."""
    with _MODELS_LOCK:
        models = list(_MODELS.values())
        _MODELS.clear()
    for m in models:  # a model holding processes or connections (PocketSphinx's decoder pool) lets them go
        close = getattr(m.model, "close", None)
        if callable(close):
            close()


def transcribe_shard(
    *, model_ref: str, backend: str | None, audio_paths: list[str], batch_size: int, boost: BoostList | None = None
) -> list[str]:
    """One shard of a cycle's transcription (the unit a task runner distributes); checked by `check_transcripts`."""
    return load_model(model_ref, backend, boost).transcribe(audio_paths, batch_size=batch_size)


def transcribe_rows(
    manifest: Manifest,
    model_ref: str,
    *,
    batch_size: int = 16,
    backend: str | None = None,
    progress: ProgressFn | None = None,
    boost: BoostList | None = None,
) -> list[str]:
    """Offline, batched transcription of every manifest row (in row order). The first batch is transcribed and
    checked against the contract on its own, so a misbehaving plugin is named before the rest is transcribed."""
    model = load_model(model_ref, backend, boost)
    paths = manifest.audio_paths
    total = len(paths)
    first = model.transcribe(paths[:batch_size], batch_size=batch_size)
    if progress is not None:
        progress(len(first), total)
    rest_progress = None if progress is None else (lambda done, _n: progress(len(first) + done, total))
    rest = (
        model.transcribe(paths[batch_size:], batch_size=batch_size, progress=rest_progress)
        if total > len(first)
        else []
    )
    return first + rest


def write_hyps(path: Path, manifest: Manifest, hyps: list[str], files: fio.FileSet | None = None) -> Path:
    rows = [{"audio_filepath": a, "hyp": h} for a, h in zip(manifest.audio_paths, hyps, strict=True)]
    return files.write_jsonl(path, rows) if files is not None else fio.write_jsonl(path, rows)
