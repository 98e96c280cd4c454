"""The pure parts of `build`: term CSV checks, templates, pronunciations, noise mixing, deterministic plans."""

from __future__ import annotations

import numpy as np
import pytest

from asr_flywheel.backends.tts.espeak import espeak_mnemonics
from asr_flywheel.build import carrier_templates, fill
from asr_flywheel.build.noise import babble_bed, measured_snr, mix_at_snr, noise_for, parse_noise_label, pink_noise
from asr_flywheel.build.phonemes import PhonemeError, Pronunciation, ipa_to_espeak
from asr_flywheel.build.plan import PlanSpec, plan
from asr_flywheel.build.templates import TEMPLATES, templates_for
from asr_flywheel.build.terms import read_pronunciations, read_terms
from asr_flywheel.config import DEFAULT_CATEGORIES


def _spec(**kw) -> PlanSpec:
    base = dict(
        contexts=("dictation", "history"),
        voices=("en-us", "en-gb"),
        noise=("clean", "snr_5db"),
        noise_kinds=("pink", "babble"),
        rows_per_term=None,
        seed=0,
        synthesizer="espeak-ng",
        g2p_source="g2p",
        audio_dir="audio",
    )
    return PlanSpec(**{**base, **kw})


def test_every_bad_term_line_is_reported_with_its_line_number(tmp_path):
    csv = tmp_path / "terms.csv"
    csv.write_text("term,entity_category\ncefazolin,drug\n,drug\n\nsepsis,bogus\nCefazolin ,drug\nlactate,\n")
    terms, problems = read_terms(csv, DEFAULT_CATEGORIES)
    assert [t.term for t in terms] == ["cefazolin"]
    assert [(p.line, p.field) for p in problems] == [
        (3, "term"),
        (5, "entity_category"),
        (6, "term"),
        (7, "entity_category"),
    ]
    assert "duplicate of line 2" in problems[2].reason


def test_pronunciation_csv_defaults_to_ipa_and_rejects_unknown_alphabets(tmp_path):
    csv = tmp_path / "overrides.csv"
    csv.write_text("term,phonemes,alphabet\ncefazolin,ˈsɛfəzəlɪn,\nsepsis,s'EpsIs,espeak\nlactate,x,klingon\n")
    found, problems = read_pronunciations(csv, "override")
    assert found["cefazolin"].alphabet == "ipa" and found["sepsis"].alphabet == "espeak"
    assert [(p.line, p.field) for p in problems] == [(4, "overrides.csv:alphabet")]


def test_ipa_converts_to_espeak_mnemonics_and_unknown_symbols_are_named():
    assert ipa_to_espeak("/ˈsɛfəzəlɪn/") == "'sEf@z@lIn"
    assert ipa_to_espeak("ˌæmiˈoʊdəroʊn") == ",ami'oUd@roUn"
    with pytest.raises(PhonemeError, match=r"U\+0298"):
        ipa_to_espeak("ʘa")
    assert espeak_mnemonics(Pronunciation("sepsis", "s'EpsIs", "espeak")) == "s'EpsIs"


def test_carrier_templates_have_one_slot_and_cover_every_context_and_category():
    frames = carrier_templates()
    assert frames and all(f.count("{term}") == 1 for f in frames)
    for context in TEMPLATES:
        for category in DEFAULT_CATEGORIES:
            assert templates_for(context, category)
    assert templates_for("handoff", "not-a-category") == TEMPLATES["handoff"]["*"]
    assert fill("{term} was given as ordered", "cefazolin {x}") == "Cefazolin {x} was given as ordered."
    assert set(carrier_templates("history", "drug")) == set(TEMPLATES["history"]["drug"])


def test_noise_labels_parse_to_target_snr():
    assert parse_noise_label("clean") is None
    assert parse_noise_label("snr_15db") == 15.0 and parse_noise_label("snr_-2.5db") == -2.5
    with pytest.raises(ValueError, match="snr_<dB>db"):
        parse_noise_label("noisy")


@pytest.mark.parametrize("kind", ["pink", "babble"])
def test_mixing_hits_the_target_snr_without_clipping_even_for_full_scale_speech(kind):
    rng = np.random.default_rng(1)
    t = np.arange(16000) / 16000
    speech = np.round(32000 * np.sin(2 * np.pi * 220 * t) * (t < 0.8)).astype(np.int16)  # loud, with silence
    talkers = [rng.standard_normal(8000) * (i + 1) for i in range(3)]
    noise = noise_for(kind, speech.size, seed=42, babble=babble_bed(talkers))
    for target in (15.0, 5.0, 0.0):
        mixed, scale = mix_at_snr(speech, noise, target)
        assert scale < 1.0  # full-scale speech plus noise must be scaled down, not clipped
        assert np.abs(mixed.astype(int)).max() < 32767
        assert abs(measured_snr(mixed, speech, scale) - target) < 0.05


def test_pink_noise_has_falling_spectrum_and_is_reproducible():
    a, b = pink_noise(32000, 7), pink_noise(32000, 7)
    assert np.array_equal(a, b)
    power = np.abs(np.fft.rfft(a)) ** 2
    low, high = power[10:100].mean(), power[10000:11000].mean()
    assert low > 20 * high  # 1/f: two decades of frequency ≈ 100x less power


def test_plan_of_existing_terms_does_not_change_when_terms_are_added(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("term,entity_category\ncefazolin,drug\nsepsis,condition\ncolonoscopy,procedure\n")
    terms, _ = read_terms(csv, DEFAULT_CATEGORIES)
    first = plan(terms[:1], _spec(), [])
    grown = plan(terms, _spec(), [])
    assert grown[: len(first)] == first
    names = [r.audio_relpath for u in grown for r in u.rows]
    assert len(names) == len(set(names)) == 3 * 2 * 2 * 2
    assert all(r.noise_kind in ("pink", "babble") for u in grown for r in u.rows if r.noise_level != "clean")


def test_rows_per_term_samples_a_seeded_subset(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("term,entity_category\ncefazolin,drug\n")
    terms, _ = read_terms(csv, DEFAULT_CATEGORIES)

    def rows(seed: int) -> list[tuple]:
        utts = plan(terms, _spec(rows_per_term=3, seed=seed), [])
        return [(u.context, u.voice, r.noise_level) for u in utts for r in u.rows]

    assert len(rows(0)) == 3 and rows(0) == rows(0)
    assert any(rows(s) != rows(0) for s in range(1, 6))


def test_override_wins_over_lexicon_and_is_recorded_as_ipa_source(tmp_path):
    csv = tmp_path / "t.csv"
    csv.write_text("term,entity_category\ncefazolin,drug\nsepsis,condition\nlactate,lab\n")
    terms, _ = read_terms(csv, DEFAULT_CATEGORIES)
    override = {"cefazolin": Pronunciation("cefazolin", "ˈsɛfəzəlɪn", "ipa", "override")}
    lexicon = {k: Pronunciation(k, "x", "ipa", "lexicon") for k in ("cefazolin", "sepsis")}
    sources = {u.term.term: u.ipa_source for u in plan(terms, _spec(), [override, lexicon])}
    assert sources == {"cefazolin": "override", "sepsis": "lexicon", "lactate": "g2p"}
