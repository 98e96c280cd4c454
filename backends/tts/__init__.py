"""Text-to-speech synthesizers that grow manifests with synthetic clinical audio (SPEC §12)."""

from asr_flywheel import hookimpl


@hookimpl
def register_synthesizers():
    from asr_flywheel.backends.tts.espeak import EspeakSynthesizer

    return [EspeakSynthesizer()]
