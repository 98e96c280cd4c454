"""Hugging Face backend: MedASR (`LasrForCTC`, transformers >= 5) fine-tuning and offline transcription.

The rules: docs/design.md#training.

transformers is imported only when a model is trained or loaded.
"""

from asr_flywheel import hookimpl


@hookimpl
def register_trainers():
    from asr_flywheel.backends.hf.trainer import HfCtcTrainer

    return [HfCtcTrainer()]


@hookimpl
def register_transcribers():
    from asr_flywheel.backends.hf.transcriber import HfTranscriber

    return [HfTranscriber()]
