"""Shared NeMo runtime helpers: quiet logging, device choice, restore/from_pretrained with clear errors."""

from __future__ import annotations

import logging
from pathlib import Path

from asr_flywheel.errors import FlywheelError, InputError


class ModelUnavailable(FlywheelError):
    """A model could not be obtained (not downloadable here, gated, missing file)."""


class _ErrorsOnly(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


def quiet_nemo() -> None:
    """Silence NeMo's INFO/WARNING chatter. A filter is needed: transcribe() resets the level per call."""
    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)
    logger = logging.getLogger("nemo_logger")
    if not any(isinstance(f, _ErrorsOnly) for f in logger.filters):
        logger.addFilter(_ErrorsOnly())


def device():
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_asr_model(weights: str):
    """`ASRModel.restore_from` for a .nemo file, `ASRModel.from_pretrained` for a hub name."""
    from nemo.collections.asr.models import ASRModel

    quiet_nemo()
    if weights.endswith(".nemo") or Path(weights).exists():
        if not Path(weights).is_file():
            raise InputError(f"NeMo model file not found: {weights}")
        return _with_transcribe_defaults(ASRModel.restore_from(restore_path=weights, map_location=device()))
    try:
        return _with_transcribe_defaults(ASRModel.from_pretrained(model_name=weights, map_location=device()))
    except Exception as exc:  # network, 401/403 gating, unknown name: all surface the same way to users
        raise ModelUnavailable(
            f"could not load {weights!r} from the model hub ({type(exc).__name__}: {str(exc)[:300]}). "
            "On a machine without hub access, download it elsewhere and pass the local .nemo file instead."
        ) from exc


def _with_transcribe_defaults(model):
    """BPE models read `cfg.validation_ds.use_start_end_token` in transcribe(); models saved without data
    sections (built from config, or exported) lack it."""
    from omegaconf import open_dict

    if model.cfg.get("validation_ds") is None:
        with open_dict(model.cfg):
            model.cfg.validation_ds = {"use_start_end_token": False}
    return model
