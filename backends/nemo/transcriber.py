"""Offline batched transcription with a NeMo ASR model (`.nemo` file or catalogue name)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from asr_flywheel.boost import BoostList
from asr_flywheel.plugins.contracts import Decoder, LoadedModel, ProgressFn


def _text(h) -> str:
    """nemo 3.0 returns Hypothesis objects; older releases returned str or (best, all) tuples."""
    if isinstance(h, tuple):
        h = h[0]
    if isinstance(h, list):
        h = h[0] if h else ""
    return h.text if hasattr(h, "text") else str(h)


class NemoModel:
    def __init__(self, name: str, model, decoder: Decoder):
        self.name = name
        self.model = model
        self.decoder = decoder

    def transcribe(
        self, audio_paths: Sequence[str], *, batch_size: int = 16, progress: ProgressFn | None = None
    ) -> list[str]:
        """Batched greedy transcription, returned in input order.

        Clips are sorted by size (a cheap proxy for duration) so each batch pads little; NeMo itself batches in
        the order given. Chunks of several batches report progress.
        """
        paths = [str(p) for p in audio_paths]
        order = sorted(range(len(paths)), key=lambda i: os.path.getsize(paths[i]))
        out: list[str] = [""] * len(paths)
        chunk = max(batch_size * 8, 64)
        self.model.eval()
        for start in range(0, len(order), chunk):
            idx = order[start : start + chunk]
            hyps = self.model.transcribe([paths[i] for i in idx], batch_size=batch_size, verbose=False)
            for i, h in zip(idx, hyps, strict=True):
                out[i] = _text(h)
            if progress:
                progress(min(start + chunk, len(order)), len(order))
        return out


class NemoTranscriber:
    name = "nemo"

    def claims(self, model_ref: str) -> bool:
        return model_ref.endswith(".nemo") and Path(model_ref).is_file()

    def load_boosted(self, model_ref: str, boost: BoostList) -> LoadedModel:
        """The model decoding with NeMo's phrase boosting toward `boost` (`backends.nemo.boosting`)."""
        from asr_flywheel.backends.nemo.boosting import apply_boost

        loaded = self._load(model_ref)
        apply_boost(loaded.model, boost)
        return loaded

    def load(self, model_ref: str) -> LoadedModel:
        return self._load(model_ref)

    def _load(self, model_ref: str) -> NemoModel:
        from asr_flywheel.backends.nemo._runtime import load_asr_model
        from asr_flywheel.backends.nemo.architecture import decoder_of, read_nemo_config
        from asr_flywheel.plugins.manager import Plugins

        weights = Plugins().weights(model_ref)
        if Path(weights).is_file():
            read_nemo_config(weights)  # a damaged archive is named as such, not as a bare gzip ReadError
        model = load_asr_model(weights)
        from omegaconf import OmegaConf

        cfg = OmegaConf.to_container(model.cfg, resolve=False)
        cfg["target"] = f"{type(model).__module__}.{type(model).__name__}"
        return NemoModel(model_ref, model, decoder_of(cfg))
