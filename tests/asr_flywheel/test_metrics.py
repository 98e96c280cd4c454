"""WER/CER/KER/SER as users get them: through `score_manifest` (what `flywheel score` and the flow run) and
`score_rows` (its per-row core), checked against jiwer and an independent word-list oracle."""

from pathlib import Path

import jiwer
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr_flywheel.manifest import Manifest
from asr_flywheel.metrics import aggregate, score_rows
from asr_flywheel.score_files import per_sample_rows
from asr_flywheel.scoring import score_manifest


def in_memory_manifest(rows: list[dict]) -> Manifest:
    """Scoring needs no audio: a manifest held in memory, as `load_manifest` would return it."""
    return Manifest(
        path=Path("/data/m.jsonl"),
        rows=rows,
        lines=list(range(1, len(rows) + 1)),
        audio_paths=[r["audio_filepath"] for r in rows],
    )


# (term, reference text, hypothesis, expected KER)
KER_CASES = [
    ("cefazolin", "give cefazolin now", "give cefazolin now", 0),
    ("cefazolin", "give cefazolin now", "give cefa zolin now", 1),  # split term is a miss
    ("cefazolin", "give cefazolin now", "give cefazolins now", 1),  # a longer word is not the term
    ("cefazolin", "give cefazolin now", "", 1),  # empty hypothesis
    ("cefazolin", "give cefazolin now", "cefazolin given", 0),  # term at start
    ("cefazolin", "give cefazolin now", "we gave cefazolin", 0),  # term at end
    ("cefazolin", "give cefazolin now", "we gave cefazolin</s>", 0),  # trailing artefact
    ("statin", "start a statin today", "start nystatin today", 1),  # substring inside a longer drug name
    ("statin", "start a statin today", "start a statin today", 0),
    ("ace", "ace inhibitor held", "wash the face", 1),  # substring at a word's end
    ("ace", "ace inhibitor held", "the aces held", 1),  # substring at a word's start
    ("ace inhibitor", "an ace inhibitor", "a grace inhibitor", 1),  # multi-word term, first word a suffix
    ("metoprolol tartrate", "start metoprolol tartrate daily", "start metoprolol tartrate daily", 0),
    ("metoprolol tartrate", "start metoprolol tartrate daily", "start tartrate metoprolol daily", 1),  # order
    ("metoprolol tartrate", "start metoprolol tartrate daily", "start metoprolol and tartrate", 1),  # contiguity
    ("beta-blocker", "a beta-blocker", "a beta-blocker", 0),  # hyphen kept on both sides
    ("beta-blocker", "a beta-blocker", "a beta blocker", 1),
    ("Cefazolin", "Cefazolin given", "CEFAZOLIN.", 0),  # case and punctuation
    ("patient’s chart", "the patient’s chart", "the patient's chart", 0),  # unicode vs ascii apostrophe
    ("dose", "one dose", "dose dose dose", 0),  # repeated words
    ("Café-au-lait", "Café-au-lait spots", "cafe-au-lait spots", 0),  # diacritics dropped (NFKD, Mn)
    ("Sjögren's", "Sjögren's syndrome", "sjogrens syndrome", 0),
    ("cefazolin", "give cefazolin now", "xx yy cefazolin zz", 0),  # surrounding errors do not affect KER
]


def test_ker_case_table_through_score_manifest():
    rows = [
        {"audio_filepath": f"/a/{i}.wav", "text": text, "term": term, "entity_category": "drug"}
        for i, (term, text, _, _) in enumerate(KER_CASES)
    ]
    report = score_manifest(in_memory_manifest(rows), [hyp for _, _, hyp, _ in KER_CASES])
    got = [r["ker"] for r in per_sample_rows(report)]
    expected = [k for *_, k in KER_CASES]
    assert got == expected, [(c[0], c[2], g) for c, g in zip(KER_CASES, got, strict=True) if g != c[3]]
    assert report.metrics.headline.ker == pytest.approx(sum(expected) / len(expected))


def test_rows_without_term_have_no_ker_and_are_excluded_from_aggregate():
    rows = [
        {"audio_filepath": "/a/0.wav", "text": "a b", "term": "a", "entity_category": "drug"},
        {"audio_filepath": "/a/1.wav", "text": "c d"},
    ]
    report = score_manifest(in_memory_manifest(rows), ["a b", "c x"])
    assert [r["ker"] for r in per_sample_rows(report)] == [0, None]
    assert report.metrics.headline.ker == 0.0 and report.metrics.headline.ker_n == 1


def test_wer_and_cer_of_empty_hypothesis_are_one_through_score_manifest():
    report = score_manifest(in_memory_manifest([{"audio_filepath": "/a/0.wav", "text": "a b c"}]), [""])
    assert (
        report.metrics.headline.wer == 1.0 and report.metrics.headline.cer == 1.0 and report.metrics.headline.ser == 1.0
    )


def test_empty_reference_is_rejected_by_the_row_scorer():
    with pytest.raises(ValueError, match="empty reference"):
        score_rows([""], ["x"], [None])


def test_mean_of_rows_differs_from_corpus_rate():
    # row 1: 1 error / 1 word; row 2: 0 errors / 3 words
    agg = aggregate(score_rows(["a", "b c d"], ["x", "b c d"], [None, None]))
    assert agg.wer == pytest.approx(0.5)
    assert agg.wer_corpus == pytest.approx(0.25)


words = st.lists(st.sampled_from(["give", "cefazolin", "two", "grams", "now", "dose"]), min_size=1, max_size=8)
hyp_words = st.lists(st.sampled_from(["give", "cefa", "zolin", "two", "grams", "now", "cefazolins"]), max_size=8)


@given(words, hyp_words)
def test_wer_and_cer_match_jiwer_through_score_manifest(ref_words, hyp_list):
    ref, hyp = " ".join(ref_words), " ".join(hyp_list)
    m = score_manifest(in_memory_manifest([{"audio_filepath": "/a/0.wav", "text": ref}]), [hyp]).metrics.to_dict()
    if hyp:
        assert m["wer"] == pytest.approx(jiwer.wer(ref, hyp))
        assert m["cer"] == pytest.approx(jiwer.cer(ref, hyp))
    else:
        assert m["wer"] == 1.0


def contains_run(needle: list[str], hay: list[str]) -> bool:
    """Independent oracle for the KER rule: a contiguous, in-order run of whole words."""
    k = len(needle)
    return any(hay[i : i + k] == needle for i in range(len(hay) - k + 1))


vocab = st.sampled_from(["statin", "nystatin", "ace", "face", "a", "ce", "dose", "doses"])


@given(st.lists(vocab, min_size=1, max_size=2), st.lists(vocab, max_size=7))
def test_ker_agrees_with_a_word_list_oracle(term_words, hyp_list):
    term, hyp = " ".join(term_words), " ".join(hyp_list)
    s = score_rows([term], [hyp], [term])
    assert s.ker[0] == (0 if contains_run(term_words, hyp_list) else 1)


@given(words)
def test_identical_strings_score_zero_everywhere(ref_words):
    ref = " ".join(ref_words)
    s = score_rows([ref], [ref], [ref_words[0]])
    assert s.wer[0] == 0 and s.cer[0] == 0 and s.ker[0] == 0 and s.ser[0] == 0


@given(words, words)
def test_ser_is_zero_iff_strings_equal(a, b):
    ra, rb = " ".join(a), " ".join(b)
    assert score_rows([ra], [rb], [None]).ser[0] == (ra != rb)


@given(words)
def test_every_contiguous_run_of_the_hypothesis_is_found(ws):
    hyp = " ".join(ws)
    pairs = [(" ".join(ws[i:j]), hyp) for i in range(len(ws)) for j in range(i + 1, len(ws) + 1)]
    terms = [t for t, _ in pairs]
    s = score_rows(terms, [h for _, h in pairs], terms)
    assert not np.any(s.ker)


def test_non_term_wer_counts_only_errors_on_the_carrier_words():
    from asr_flywheel.metrics import non_term_wer

    refs = ["give the patient cefazolin now", "start piperacillin tazobactam today", "no term here"]
    hyps = ["give a patient sefazolin now", "start pipera tazo bactam today please", "no term here"]
    terms = ["cefazolin", "piperacillin tazobactam", "absent"]
    r = non_term_wer(refs, hyps, terms)
    # row 1: "the"→"a" is a carrier error, the term's own miss is not; row 2: insertions inside/next to the term
    # are the term's, "please" after "today" is a carrier insertion; row 3 has no term in its reference.
    assert r.words == 4 + 2 and r.wer == pytest.approx(2 / 6)
    assert non_term_wer([], [], []).wer is None
