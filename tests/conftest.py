"""Shared fixtures: real audio synthesised with espeak-ng, manifests written to temp dirs."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from helpers import CLINICAL_SENTENCES, write_manifest

from backends.tts.espeak import EspeakSynthesizer


@pytest.fixture(scope="session")
def audio_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("tts-cache")


@pytest.fixture(scope="session")
def synth(audio_cache) -> Callable[[str, Path], Path]:
    """synth(text, dest) → a real 16 kHz mono WAV of `text` at `dest` (espeak-ng, cached per text)."""
    tts = EspeakSynthesizer()

    def make(text: str, dest: Path, voice: str | None = None) -> Path:
        key = hashlib.sha1(f"{voice}|{text}".encode()).hexdigest()[:16]
        cached = audio_cache / f"{key}.wav"
        if not cached.exists():
            tts.synthesize(text, cached, voice=voice)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(cached, dest)
        return dest

    return make


@pytest.fixture
def clinical_manifest(tmp_path, synth) -> Path:
    """A valid 8-row manifest with real audio (relative paths) covering every category."""
    rows = []
    for i, (text, term, cat) in enumerate(CLINICAL_SENTENCES):
        synth(text, tmp_path / "audio" / f"row{i}.wav")
        rows.append(
            {
                "audio_filepath": f"audio/row{i}.wav",
                "text": text,
                "duration": None,
                "term": term,
                "entity_category": cat,
                "ipa_source": "override" if i % 2 else "g2p",
                "noise_level": "clean",
                "voice_id": "en",
                "context_type": "dictation",
            }
        )
    return write_manifest(tmp_path / "manifest.jsonl", rows)
