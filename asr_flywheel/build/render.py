"""Turning planned utterances into WAV files: synthesise once, write each noise variant, measure its SNR.

Every file is written to a temporary name and renamed into place, so an interrupted build leaves either a
complete WAV or none. The measured SNR is read back from the written file, and a file off its label by more
than the tolerance is an error rather than a mislabelled row.
"""

from __future__ import annotations

import io
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import cast

import numpy as np
import soundfile as sf

from asr_flywheel import io as fio
from asr_flywheel.build.noise import SNR_TOLERANCE_DB, babble_bed, measured_snr, mix_at_snr, noise_for
from asr_flywheel.build.phonemes import Pronunciation
from asr_flywheel.build.plan import PlannedRow, Utterance
from asr_flywheel.build.voices import Engines
from asr_flywheel.errors import FlywheelError

#: Everyday sentences (no clinical terms) spoken by the babble talkers.
BABBLE_SENTENCES = (
    "did you see where i left the car keys this morning",
    "the coffee machine on the third floor is broken again",
    "we should get lunch before the meeting starts",
    "my brother is coming to visit next weekend",
    "the bus was late so i walked the whole way",
    "can you pass me that folder on the table",
    "it is supposed to rain all afternoon",
    "they moved the parking lot entrance around the back",
)


class BuildError(FlywheelError):
    """Synthesis or mixing failed for a row (the manifest is not written)."""


def _read_speech(path: Path, sample_rate: int) -> np.ndarray:
    try:
        data, sr = sf.read(str(path), dtype="int16", always_2d=True)
    except sf.LibsndfileError as exc:
        # A synthesizer that ran out of disk leaves a truncated file and says nothing; name the real cause.
        if (full := fio.full_disk(path)) is not None:
            raise full from None
        raise BuildError(f"the synthesizer wrote an unreadable file {path.name}: {exc}") from None
    if sr != sample_rate or data.shape[1] != 1:
        raise BuildError(f"synthesizer wrote {sr} Hz, {data.shape[1]} channel(s); expected {sample_rate} Hz mono")
    return data[:, 0]


def _write_wav(path: Path, samples: np.ndarray, sample_rate: int) -> None:
    """Encode in memory, then write atomically (`fio.write_bytes`): a full disk is reported as such (libsndfile
    would say "Format not recognised" about its own half-written file), nothing partial is left, and the file gets
    the umask's permissions, so another user (a serving container) can read it."""
    buffer = io.BytesIO()
    sf.write(buffer, samples, sample_rate, subtype="PCM_16", format="WAV")
    fio.write_bytes(path, buffer.getvalue())


_BABBLE_CACHE: dict[tuple, np.ndarray] = {}


def make_babble(synthesizer, voices: tuple[str, ...], work_dir: Path, sample_rate: int, seed: int) -> np.ndarray:
    """A babble bed from other synthetic voices: each voice reads every babble sentence; the streams are summed.

    Made once per process for a (synthesizer, voices, rate, seed): builds that append reuse the same bed.
    """
    key = (synthesizer.name, tuple(voices), sample_rate, seed)
    if key not in _BABBLE_CACHE:
        _BABBLE_CACHE[key] = _make_babble(synthesizer, voices, work_dir, sample_rate, seed)
    return _BABBLE_CACHE[key]


def _make_babble(synthesizer, voices: tuple[str, ...], work_dir: Path, sample_rate: int, seed: int) -> np.ndarray:
    talkers = []
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".babble-") as tmp:
        for v, voice in enumerate(voices):
            parts = []
            for k, sentence in enumerate(BABBLE_SENTENCES):
                out = Path(tmp) / f"{v}_{k}.wav"
                parts.append(_speak(synthesizer, sentence, out, voice=voice, sample_rate=sample_rate))
            talkers.append(np.concatenate(parts))
    return babble_bed(talkers, seed)


def _synthesise(utt: Utterance, synthesizer: Engines, work_dir: Path, sample_rate: int) -> np.ndarray:
    kwargs: dict = {"voice": utt.voice, "sample_rate": sample_rate, "prosody": utt.prosody}
    if utt.pronunciation is not None:
        kwargs["pronunciations"] = (utt.pronunciation,)
    with tempfile.TemporaryDirectory(dir=work_dir, prefix=".synth-") as tmp:
        return _speak(synthesizer, utt.text, Path(tmp) / "speech.wav", **kwargs)


def _speak(synthesizer: Engines, text: str, out: Path, *, sample_rate: int, **kwargs) -> np.ndarray:
    """One engine call, read back; an engine that fails because the disk filled is reported as a full disk (its
    own words, e.g. sox's "RIFF header not found" about a truncated file, hide the cause)."""
    try:
        written = synthesizer.synthesize(text, out, sample_rate=sample_rate, **kwargs)
    except Exception as exc:
        if (full := fio.full_disk(out)) is not None:
            raise full from None
        if isinstance(exc, FlywheelError):
            raise
        # a plugin's own failure, reported with the row it was making
        raise BuildError(f"{synthesizer.name} failed ({type(exc).__name__}: {exc})") from None
    return _read_speech(Path(written), sample_rate)


def _write_row(utt: Utterance, row: PlannedRow, speech, babble, base_dir: Path, sample_rate: int) -> dict:
    path = base_dir / row.audio_relpath
    snr = None
    if row.snr_target is None:
        _write_wav(path, speech, sample_rate)
        frames = speech.size
    else:
        noise = noise_for(cast(str, row.noise_kind), speech.size, row.noise_seed, babble)
        mixed, scale = mix_at_snr(speech, noise, row.snr_target)
        _write_wav(path, mixed, sample_rate)
        written, _ = sf.read(str(path), dtype="int16")
        snr = round(measured_snr(written, speech, scale), 3)
        if abs(snr - row.snr_target) > SNR_TOLERANCE_DB:
            raise BuildError(f"{path.name}: measured SNR {snr} dB is off its label {row.noise_level}")
        frames = written.size
    return _row_dict(utt, row, frames / sample_rate, snr)


@lru_cache(maxsize=4096)
def _term_phones(synthesizer: Engines, term: str, voice: str, pron: Pronunciation | None) -> str | None:
    """What the engine says for the term (same for every sentence it is in): asked once per term and voice."""
    return synthesizer.term_phones(term, voice, pron)


def _speech_fields(utt: Utterance, synthesizer: Engines) -> dict:
    """How the row was spoken: the term's phones as the engine said them, and the row's prosody."""
    extra: dict = {}
    phones = _term_phones(synthesizer, utt.term.term, utt.voice, utt.pronunciation)
    if phones:
        extra["spoken_phones"] = phones
    if synthesizer.varies_prosody(utt.voice):
        extra["prosody"] = utt.prosody.to_dict()
    return extra


def _row_dict(utt: Utterance, row: PlannedRow, duration: float, snr: float | None) -> dict:
    d = {
        "audio_filepath": row.audio_relpath,
        "text": utt.text,
        "duration": round(duration, 4),
        "term": utt.term.term,
        "entity_category": utt.term.category,
        "ipa_source": utt.ipa_source,
        "voice_id": utt.voice,
        "noise_level": row.noise_level,
        "context_type": utt.context,
        "noise_kind": row.noise_kind,
        "snr_db": snr,
    }
    if utt.pronunciation is not None:
        d["pronunciation"] = f"{utt.pronunciation.alphabet}:{utt.pronunciation.phonemes}"
    return d


def render(utt: Utterance, synthesizer: Engines, babble, base_dir: Path, sample_rate: int) -> list[dict]:
    """Synthesise one utterance and write all its noise variants; returns their manifest rows."""
    work_dir = base_dir / utt.rows[0].audio_relpath
    work_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        speech = _synthesise(utt, synthesizer, work_dir.parent, sample_rate)
        extra = _speech_fields(utt, synthesizer)
        return [_write_row(utt, r, speech, babble, base_dir, sample_rate) | extra for r in utt.rows]
    except (FlywheelError, ValueError) as exc:
        where = f"term {utt.term.term!r} (line {utt.term.line}), {utt.context}, voice {utt.voice}"
        raise BuildError(f"{where}: {exc}") from None
