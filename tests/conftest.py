"""Shared fixtures: real audio synthesised with espeak-ng, manifests written to temp dirs."""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import settings

from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
from helpers import CLINICAL_SENTENCES, dataset_rows, write_manifest

#: The longest files, started first: with two workers (pyproject's addopts) they then run beside the many short
#: files instead of after them, which sets the suite's wall time.
LONGEST_FIRST = ("test_demo.py", "test_burst.py", "test_deployments_e2e.py", "test_workspace_server.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = Path(str(item.fspath)).name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: the order inside a file is kept


# Property tests assert behaviour, never timings: a busy 2-core CI machine must not turn a slow example into a failure.
settings.register_profile("flywheel", deadline=None)
settings.load_profile("flywheel")


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


@pytest.fixture(scope="session")
def tiny_dataset(tmp_path_factory, synth) -> Path:
    """32 real espeak-ng clips (16 clinical sentences x 2 voices) with a manifest; 10 drug rows."""
    root = tmp_path_factory.mktemp("tiny-dataset")
    rows = []
    for i, (text, term, cat, voice) in enumerate(dataset_rows(2)):
        synth(text, root / "audio" / f"r{i:02d}.wav", voice=voice)
        rows.append(
            {
                "audio_filepath": f"audio/r{i:02d}.wav",
                "text": text,
                "duration": None,
                "term": term,
                "entity_category": cat,
                "ipa_source": "lexicon",
                "voice_id": voice,
                "noise_level": "clean",
                "context_type": "dictation",
            }
        )
    return write_manifest(root / "manifest.jsonl", rows)


@pytest.fixture(scope="session")
def nemo_tiny_models(tmp_path_factory, tiny_dataset) -> dict[str, Path]:
    """Tiny NeMo models built from config (CTC, RNNT, TDT) whose tokenizer covers the dataset's texts."""
    import json

    from asr_flywheel.backends.nemo.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("nemo-models")
    texts = [json.loads(x)["text"] for x in tiny_dataset.read_text().splitlines()]
    return {kind: build_tiny_model(kind, texts, root / f"tiny_{kind}.nemo") for kind in ("ctc", "rnnt", "tdt")}


@pytest.fixture(scope="session")
def hf_tiny_model(tmp_path_factory, tiny_dataset) -> Path:
    """A tiny LasrForCTC (MedASR architecture) + processor built from config and saved with save_pretrained."""
    import json

    from asr_flywheel.backends.hf.tiny import build_tiny_medasr

    texts = [json.loads(x)["text"] for x in tiny_dataset.read_text().splitlines()]
    return build_tiny_medasr(texts, tmp_path_factory.mktemp("hf-models") / "tiny_medasr")


@pytest.fixture(scope="session")
def tiny_split(tiny_dataset, tmp_path_factory) -> Path:
    """train.jsonl / validation.jsonl of the tiny dataset (term-aware split, durations filled)."""
    from asr_flywheel.config import SplitConfig
    from asr_flywheel.split import split_manifest, write_split
    from asr_flywheel.validation import validate_manifest

    report = validate_manifest(tiny_dataset)
    manifest = report.raise_if_invalid()
    out = tmp_path_factory.mktemp("tiny-split")
    result = split_manifest(manifest, SplitConfig(), ("drug",))
    write_split(manifest, result, SplitConfig(), out, {a: i.duration for a, i in report.audio.items()})
    return out
