"""`build` end to end with real espeak-ng audio: measured SNR, append-only growth, determinism, pronunciations.

Lean on purpose: one or two terms, one or two voices, one context (espeak-ng takes ~20 ms a clip).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
from asr_flywheel.build import BuildOptions, render
from asr_flywheel.build.builder import _spec, run_build
from asr_flywheel.build.plan import plan
from asr_flywheel.build.render import BuildError
from asr_flywheel.build.terms import read_terms
from asr_flywheel.config import DEFAULT_CATEGORIES
from asr_flywheel.errors import InputError
from asr_flywheel.flows.building import build_manifest
from asr_flywheel.io import read_jsonl
from asr_flywheel.validation import validate_manifest

# espeak-ng (bare ids: the default engine) and no judge: these tests are about the build's mechanics, and the
# judge rejects espeak's speech (tests/asr_flywheel/test_build_judge.py covers it).
ONE = BuildOptions(
    contexts=("chart_note",),
    voices=("en-us",),
    noise=("clean", "snr_15db", "snr_5db"),
    workers=2,
    progress=False,
    judge=None,
)


def _terms(path: Path, *rows: str) -> Path:
    path.write_text("term,entity_category\n" + "".join(f"{r}\n" for r in rows))
    return path


def _audio_hashes(manifest: Path) -> dict[str, str]:
    return {
        r["audio_filepath"]: hashlib.sha256((manifest.parent / r["audio_filepath"]).read_bytes()).hexdigest()
        for r in read_jsonl(manifest)
    }


def _plan(terms: Path, opts: BuildOptions):
    return plan(read_terms(terms, DEFAULT_CATEGORIES)[0], _spec(opts, EspeakSynthesizer()), [])


def _independent_snr(clean: np.ndarray, noisy: np.ndarray) -> float:
    """SNR from the two written files alone: least-squares speech gain, everything else is noise."""
    c, m = clean.astype(np.float64), noisy.astype(np.float64)
    gain = float(m @ c / (c @ c))
    residual = m - gain * c
    return float(10 * np.log10(np.sum((gain * c) ** 2) / np.sum(residual**2)))


@pytest.mark.parametrize("kind", ["pink", "babble"])
def test_noisy_files_measure_within_half_a_db_of_their_label(tmp_path, kind):
    out = tmp_path / "m.jsonl"
    report = build_manifest(
        _terms(tmp_path / "t.csv", "vancomycin,drug"), out, BuildOptions(**{**ONE.__dict__, "noise_kinds": (kind,)})
    )
    rows = read_jsonl(out)
    assert report.rows_added == 3 and validate_manifest(out).ok
    clean, _ = sf.read(out.parent / rows[0]["audio_filepath"], dtype="int16")
    for row in rows[1:]:
        noisy, sr = sf.read(out.parent / row["audio_filepath"], dtype="int16")
        assert sr == 16000 and noisy.ndim == 1 and row["noise_kind"] == kind
        label = float(row["noise_level"][4:-2])
        snr = _independent_snr(clean, noisy)
        assert abs(snr - label) <= 0.5, (row["noise_level"], snr)
        # The recorded value agrees with the file (least squares credits noise that happens to correlate with
        # the speech to the speech, so babble reads a little higher here).
        assert abs(row["snr_db"] - snr) < 0.3
        assert np.abs(noisy.astype(int)).max() < 32767  # scaled, never clipped


def test_append_adds_rows_without_rewriting_existing_rows_or_their_audio(tmp_path):
    out = tmp_path / "m.jsonl"
    first = build_manifest(_terms(tmp_path / "a.csv", "cefazolin,drug"), out, ONE)
    before, hashes = out.read_bytes(), _audio_hashes(out)
    mtimes = {p: (out.parent / p).stat().st_mtime_ns for p in hashes}

    grown = build_manifest(_terms(tmp_path / "b.csv", "cefazolin,drug", "sepsis,condition"), out, ONE, append=True)

    after = out.read_bytes()
    assert after[: len(before)] == before and len(after) > len(before)
    assert {p: h for p, h in _audio_hashes(out).items() if p in hashes} == hashes
    assert {p: (out.parent / p).stat().st_mtime_ns for p in hashes} == mtimes
    assert grown.terms_present == ["cefazolin"] and grown.terms_added == ["sepsis"]
    assert grown.rows_added == 3 and grown.rows_total == 6
    assert grown.version_before == first.version != grown.version
    assert validate_manifest(out).ok


def test_building_twice_gives_identical_manifest_bytes_and_audio(tmp_path):
    terms = _terms(tmp_path / "t.csv", "metoprolol tartrate,drug")
    opts = BuildOptions(**{**ONE.__dict__, "voices": ("en-us", "en-gb")})
    assert {"pink", "babble"} <= {r.noise_kind for u in _plan(terms, opts) for r in u.rows}
    a, b = tmp_path / "a" / "m.jsonl", tmp_path / "b" / "m.jsonl"
    build_manifest(terms, a, opts)
    render._BABBLE_CACHE.clear()  # the second build makes its babble afresh too
    build_manifest(terms, b, opts)
    assert a.read_bytes() == b.read_bytes()
    assert _audio_hashes(a) == _audio_hashes(b)


def test_override_and_lexicon_tiers_are_spoken_and_recorded(tmp_path):
    terms = _terms(tmp_path / "t.csv", "cefazolin,drug", "sepsis,condition")
    overrides = tmp_path / "overrides.csv"
    overrides.write_text("term,phonemes,alphabet\ncefazolin,ˈkɛfəzoʊlɪn,ipa\n")
    lexicon = tmp_path / "lexicon.csv"
    lexicon.write_text("term,phonemes,alphabet\nsepsis,s'EpsIs,espeak\ncefazolin,x,espeak\n")
    clean = BuildOptions(**{**ONE.__dict__, "noise": ("clean",)})
    tiered = tmp_path / "tiered" / "m.jsonl"
    build_manifest(terms, tiered, BuildOptions(**{**clean.__dict__, "overrides": overrides, "lexicon": lexicon}))
    plain = tmp_path / "plain" / "m.jsonl"
    build_manifest(terms, plain, clean)
    rows = {r["term"]: r for r in read_jsonl(tiered)}
    assert rows["cefazolin"]["ipa_source"] == "override" and rows["cefazolin"]["pronunciation"] == "ipa:ˈkɛfəzoʊlɪn"
    assert rows["sepsis"]["ipa_source"] == "lexicon"
    assert {r["ipa_source"] for r in read_jsonl(plain)} == {"g2p"}
    # The override really changed what was spoken ("k" for "s"): same sentence, different audio.
    plain_rows = {r["term"]: r for r in read_jsonl(plain)}
    assert rows["cefazolin"]["text"] == plain_rows["cefazolin"]["text"]
    spoken = (tiered.parent / rows["cefazolin"]["audio_filepath"]).read_bytes()
    assert spoken != (plain.parent / plain_rows["cefazolin"]["audio_filepath"]).read_bytes()


def test_unusable_inputs_are_all_reported_before_any_audio_is_made(tmp_path):
    terms = _terms(tmp_path / "t.csv", "cefazolin,drug", "头孢唑林,drug", "sepsis,condition")
    overrides = tmp_path / "o.csv"
    overrides.write_text("term,phonemes\nsepsis,ʘɛpsɪs\n")
    out = tmp_path / "m.jsonl"
    opts = BuildOptions(**{**ONE.__dict__, "overrides": overrides, "voices": ("en-us", "xx-no-such-voice")})
    with pytest.raises(InputError) as err:
        build_manifest(terms, out, opts)
    text = err.value.render()
    assert "xx-no-such-voice" in text and "line 3" in text and "line 4" in text and "U+0298" in text
    assert "does not exist" in text and "Latin script" in text
    assert not out.exists() and not (tmp_path / "audio").exists()


def test_an_existing_manifest_is_never_overwritten_without_append(tmp_path):
    out = tmp_path / "m.jsonl"
    out.write_text("keep me\n")
    with pytest.raises(InputError, match="--append"):
        build_manifest(_terms(tmp_path / "t.csv", "sepsis,condition"), out, ONE)
    assert out.read_text() == "keep me\n"


class _FailsOn(EspeakSynthesizer):
    """espeak-ng that breaks on one word: stands in for a synthesizer crashing part-way through a build."""

    def __init__(self, word: str):
        super().__init__()
        self.word = word

    def synthesize(self, text, out_path, *, voice=None, sample_rate=16000, pronunciations=()):
        if self.word in text.lower():
            raise RuntimeError("synthesizer crashed")
        return super().synthesize(text, out_path, voice=voice, sample_rate=sample_rate, pronunciations=pronunciations)


def test_a_build_failing_part_way_leaves_the_manifest_exactly_as_it_was(tmp_path):
    out = tmp_path / "m.jsonl"
    build_manifest(_terms(tmp_path / "a.csv", "sepsis,condition"), out, ONE)
    before = out.read_bytes()
    grown = _terms(tmp_path / "b.csv", "lactate,lab", "troponin,lab")
    with pytest.raises(BuildError, match=r"troponin.*synthesizer crashed"):
        run_build(grown, out, ONE, synthesizer=_FailsOn("troponin"), append=True)
    assert out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp manifest left behind


class _FillsTheDisk(EspeakSynthesizer):
    """A test-double engine that does what flite + sox did on CI's full disk: it writes until the disk is full,
    then fails in its own words ("RIFF header not found"). A real engine cannot be made to lose that race on
    demand, so this one loses it every time."""

    def synthesize(self, text, out_path, *, voice=None, sample_rate=16000, pronunciations=(), prosody=None):
        import errno

        from asr_flywheel.backends.tts._tools import SynthesisError

        try:
            with open(out_path, "wb") as fh:
                while True:
                    fh.write(b"\0" * 4096)
                    fh.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
        raise SynthesisError("sox failed (2): sox FAIL formats: can't open input file `raw.wav': RIFF header not found")


def test_an_engine_that_fails_in_its_own_words_on_a_full_disk_is_reported_as_a_full_disk(tmp_path):
    from helpers import small_filesystem

    with small_filesystem(tmp_path / "disk", free_bytes=64 * 1024) as disk:
        terms = _terms(disk / "t.csv", "sepsis,condition")
        with pytest.raises(OSError, match="no space left on the device") as caught:
            run_build(terms, disk / "m.jsonl", ONE, synthesizer=_FillsTheDisk())
        assert "RIFF" not in str(caught.value)
        assert not (disk / "m.jsonl").exists()
