"""Batched greedy CTC transcription with a Hugging Face model (MedASR / LasrForCTC).

Uses `model.generate` with the audio attention mask, which blanks frames past each clip's end (the ASR
`pipeline` does not, and appends garbage from padding when batching). Clips are sorted by length so each batch
pads little; results come back in input order.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from asr_flywheel.backends.hf._runtime import (
    MIN_INFERENCE_SAMPLES,
    SAMPLE_RATE,
    clean_text,
    is_hf_model_dir,
    load_audio,
)
from asr_flywheel.plugins.contracts import Decoder, LoadedModel, ProgressFn


class HfCtcModel:
    decoder = Decoder.CTC

    def __init__(self, name: str, processor, model):
        self.name = name
        self.processor = processor
        self.model = model.eval()

    def transcribe(
        self, audio_paths: Sequence[str], *, batch_size: int = 16, progress: ProgressFn | None = None
    ) -> list[str]:
        import torch

        audio = [load_audio(str(p)) for p in audio_paths]
        audio = [np.pad(a, (0, max(0, MIN_INFERENCE_SAMPLES - len(a)))) for a in audio]
        order = sorted(range(len(audio)), key=lambda i: len(audio[i]))
        out: list[str] = [""] * len(audio)
        device = next(self.model.parameters()).device
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            feats = self.processor.feature_extractor(
                [audio[i] for i in idx],
                sampling_rate=SAMPLE_RATE,
                padding="longest",
                return_attention_mask=True,
                return_tensors="pt",
            )
            with torch.inference_mode():
                ids = self.model.generate(
                    feats["input_features"].to(device), attention_mask=feats["attention_mask"].to(device)
                )
            for i, text in zip(idx, self.processor.batch_decode(ids, skip_special_tokens=True), strict=True):
                out[i] = clean_text(text)
            if progress:
                progress(min(start + batch_size, len(order)), len(order))
        return out


class HfTranscriber:
    name = "hf"

    def claims(self, model_ref: str) -> bool:
        return is_hf_model_dir(model_ref)

    def load(self, model_ref: str) -> LoadedModel:
        from asr_flywheel.backends.hf._runtime import load_processor_and_model
        from asr_flywheel.plugins.manager import Plugins

        processor, model = load_processor_and_model(Plugins().weights(model_ref))
        if model.device.type == "cpu":
            import torch

            if torch.cuda.is_available():
                model = model.to("cuda")
        return HfCtcModel(model_ref, processor, model)
