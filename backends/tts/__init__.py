"""Text-to-speech synthesizers that grow manifests with synthetic clinical audio (SPEC §12).

`espeak-ng` (local, the default) and `riva-tts` (a Riva / Magpie TTS server, opt-in). Registering them is cheap:
neither imports its client library until it synthesises.
"""

from asr_flywheel import hookimpl


@hookimpl
def register_synthesizers():
    from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
    from asr_flywheel.backends.tts.riva import RivaSynthesizer

    return [EspeakSynthesizer(), RivaSynthesizer()]
