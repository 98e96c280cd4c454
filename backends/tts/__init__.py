"""Text-to-speech synthesizers that grow manifests with synthetic clinical audio.

Local engines: `flite` and `festival` (realistic voices, the defaults) and `espeak-ng` (robotic, kept by name for
phoneme-input experiments); `riva-tts` (a Riva / Magpie TTS server, opt-in). Voice ids name the engine
(`flite:rms`). Registering them is cheap: nothing runs until a build synthesises.
"""

from asr_flywheel import hookimpl


@hookimpl
def register_synthesizers():
    from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
    from asr_flywheel.backends.tts.festival import FestivalSynthesizer
    from asr_flywheel.backends.tts.flite import FliteSynthesizer
    from asr_flywheel.backends.tts.riva import RivaSynthesizer

    return [FliteSynthesizer(), FestivalSynthesizer(), EspeakSynthesizer(), RivaSynthesizer()]
