"""Loading HF CTC models and processors: local directories or the Hub (gated MedASR needs HF_TOKEN)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.secrets import hf_token

SAMPLE_RATE = 16000
#: Shorter clips crash the feature extractor (< 400 samples) or the subsampling convs (< 2320 samples).
MIN_INFERENCE_SAMPLES = 2320
#: Google's recipe drops training clips of 0.6 s or less: CTC cannot align them. We refuse them instead.
MIN_TRAIN_SECONDS = 0.6


class ModelUnavailable(FlywheelError):
    pass


def is_hf_model_dir(ref: str) -> bool:
    p = Path(ref)
    return p.is_dir() and (p / "config.json").is_file()


def model_type(ref: str) -> str:
    return json.loads((Path(ref) / "config.json").read_text()).get("model_type", "")


def _causes(exc: BaseException):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def load_processor_and_model(ref: str):
    """AutoProcessor + AutoModelForCTC from a local directory or a Hub id, with actionable errors.

    The token comes from the environment (HF_TOKEN) and is passed to the Hub client only; it is never logged.
    """
    from transformers import AutoModelForCTC, AutoProcessor

    local = is_hf_model_dir(ref)
    if not local and Path(ref).exists():
        raise InputError(f"{ref} is not a Hugging Face model directory (no config.json)")
    token = None if local else hf_token()
    try:
        processor = AutoProcessor.from_pretrained(ref, token=token)
        model = AutoModelForCTC.from_pretrained(ref, token=token)
    except OSError as exc:
        from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError

        chain = list(_causes(exc))
        if any(isinstance(c, GatedRepoError) for c in chain):
            hint = (
                "set HF_TOKEN (environment or the `hf-token` Prefect Secret block)"
                if token is None
                else "the HF_TOKEN in use has no access: accept the model's terms on the Hub with that account"
            )
            raise ModelUnavailable(f"{ref} is gated on the Hugging Face Hub: {hint}") from None
        if any(isinstance(c, LocalEntryNotFoundError) for c in chain):
            raise ModelUnavailable(
                f"{ref} is not in the local Hugging Face cache and the Hub is unreachable; download it on a "
                "connected machine and pass the local directory (or set HF_HUB_OFFLINE=1 with a filled cache)"
            ) from None
        raise ModelUnavailable(f"could not load {ref}: {type(exc).__name__}: {str(exc)[:300]}") from None
    return processor, model


def load_audio(path: str) -> np.ndarray:
    """Float32 mono 16 kHz samples in [-1, 1]; downmixes and resamples (validation decides if that's allowed)."""
    import soundfile as sf

    audio, sr = sf.read(path, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sr, SAMPLE_RATE).astype(np.float32)
    return audio


def clean_text(text: str) -> str:
    for tok in ("<epsilon>", "</s>", "<s>", "<pad>"):
        text = text.replace(tok, " ")
    return " ".join(text.split())
