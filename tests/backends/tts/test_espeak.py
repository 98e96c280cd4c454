"""The espeak-ng synthesizer: phoneme input for overrides, what a voice cannot speak, repeatable audio."""

from __future__ import annotations

import pytest
import soundfile as sf

from asr_flywheel.backends.tts.espeak import EspeakSynthesizer, SynthesisError, with_phonemes
from asr_flywheel.build import Pronunciation
from asr_flywheel.plugins.manager import Plugins

CEFAZOLIN_IPA = Pronunciation("cefazolin", "ˈkɛfəzoʊlɪn", "ipa")


def test_pronunciations_replace_the_phrase_inside_the_sentence_as_inline_phonemes():
    spoken = with_phonemes("Cefazolin was given; cefazolin again.", (CEFAZOLIN_IPA,))
    assert spoken == "[['kEf@zoUlIn]] was given; [['kEf@zoUlIn]] again."
    assert with_phonemes("No sepsis.", (Pronunciation("sepsis", "s'EpsIs", "espeak"),)) == "No [[s'EpsIs]]."
    with pytest.raises(SynthesisError, match="does not occur"):
        with_phonemes("No sepsis.", (CEFAZOLIN_IPA,))


def test_phoneme_input_changes_the_audio_and_the_same_input_gives_identical_bytes(tmp_path):
    tts = EspeakSynthesizer()
    plain = tts.synthesize("Cefazolin was given.", tmp_path / "plain.wav")
    again = tts.synthesize("Cefazolin was given.", tmp_path / "again.wav")
    override = tts.synthesize("Cefazolin was given.", tmp_path / "o.wav", pronunciations=(CEFAZOLIN_IPA,))
    assert plain.read_bytes() == again.read_bytes()  # sox runs with repeatable dither
    assert override.read_bytes() != plain.read_bytes()
    info = sf.info(override)
    assert (info.samplerate, info.channels, info.subtype) == (16000, 1, "PCM_16")


def test_voice_and_speakability_checks_name_the_reason():
    tts = EspeakSynthesizer()
    assert tts.check_voice("en-gb") is None
    assert "does not exist" in tts.check_voice("xx-no-such-voice")
    assert tts.unspeakable("piperacillin-tazobactam", "en-us") is None
    assert "Latin script" in tts.unspeakable("头孢唑林", "en-us")
    assert "no phonemes" in tts.unspeakable("...", "en-us")
    assert "U+0298" in tts.check_pronunciation(Pronunciation("x", "ʘ", "ipa"))


def test_both_synthesizers_are_registered_through_the_entry_point():
    assert {"espeak-ng", "riva-tts"} <= set(Plugins().synthesizers())
