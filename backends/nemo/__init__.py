"""NeMo backend: stock SFT of Parakeet/Conformer models and offline batched transcription (docs/design.md#training).

Registered through the `asr_flywheel` entry-point group like any third-party plugin. Importing this package
is cheap; NeMo (13–25 s to import) is loaded only when a model is trained or loaded.
"""

from asr_flywheel import hookimpl


@hookimpl
def register_trainers():
    from asr_flywheel.backends.nemo.trainer import NemoTrainer

    return [NemoTrainer()]


@hookimpl
def register_transcribers():
    from asr_flywheel.backends.nemo.transcriber import NemoTranscriber

    return [NemoTranscriber()]


@hookimpl
def register_base_recipes():
    from asr_flywheel.backends.nemo.base_recipe import GeneralEnglishBase

    return [GeneralEnglishBase()]
