import jiwer
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from asr_flywheel.metrics import aggregate, char_error_rate, keyword_error, score_rows, term_found, word_error_rate
from asr_flywheel.normalize import normalize as n


def ker(term: str, hyp: str) -> int:
    return keyword_error(n(term), n(hyp))


@pytest.mark.parametrize(
    ("term", "hyp", "expected"),
    [
        ("cefazolin", "give cefazolin now", 0),
        ("cefazolin", "give cefa zolin now", 1),  # split term is a miss
        ("cefazolin", "give cefazolins now", 1),  # a longer word is not the term
        ("cefazolin", "", 1),  # empty hypothesis
        ("cefazolin", "cefazolin given", 0),  # term at start
        ("cefazolin", "we gave cefazolin", 0),  # term at end
        ("cefazolin", "we gave cefazolin</s>", 0),  # trailing artefact
        ("metoprolol tartrate", "start metoprolol tartrate daily", 0),  # multi-word
        ("metoprolol tartrate", "start tartrate metoprolol daily", 1),  # out of order
        ("metoprolol tartrate", "start metoprolol and tartrate", 1),  # not contiguous
        ("beta-blocker", "a beta-blocker", 0),  # hyphen kept on both sides
        ("beta-blocker", "a beta blocker", 1),
        ("Cefazolin", "CEFAZOLIN.", 0),  # case and punctuation
        ("patient’s chart", "the patient's chart", 0),  # unicode vs ascii apostrophe
        ("dose", "dose dose dose", 0),  # repeated words
    ],
)
def test_keyword_error_cases(term, hyp, expected):
    assert ker(term, hyp) == expected


def test_surrounding_errors_do_not_affect_ker():
    assert ker("cefazolin", "xx yy cefazolin zz") == 0


def test_wer_and_cer_of_empty_hypothesis_are_one():
    assert word_error_rate("a b c", "") == 1.0
    assert char_error_rate("abc", "") == 1.0


def test_empty_reference_is_rejected():
    with pytest.raises(ValueError, match="empty reference"):
        score_rows([""], ["x"], [None])


def test_rows_without_term_have_no_ker_and_are_excluded_from_aggregate():
    s = score_rows(["a b", "c d"], ["a b", "c x"], ["a", None])
    assert s.ker[0] == 0 and np.isnan(s.ker[1])
    agg = aggregate(s)
    assert agg.ker == 0.0 and agg.ker_n == 1


def test_mean_of_rows_differs_from_corpus_rate():
    # row 1: 1 error / 1 word; row 2: 0 errors / 3 words
    agg = aggregate(score_rows(["a", "b c d"], ["x", "b c d"], [None, None]))
    assert agg.wer == pytest.approx(0.5)
    assert agg.wer_corpus == pytest.approx(0.25)


words = st.lists(st.sampled_from(["give", "cefazolin", "two", "grams", "now", "dose"]), min_size=1, max_size=8)


@given(words, st.lists(st.sampled_from(["give", "cefa", "zolin", "two", "grams", "now"]), max_size=8))
def test_wer_and_cer_match_jiwer(ref_words, hyp_words):
    ref, hyp = " ".join(ref_words), " ".join(hyp_words)
    s = score_rows([ref], [hyp], [None])
    if hyp:
        assert s.wer[0] == pytest.approx(jiwer.wer(ref, hyp))
        assert s.cer[0] == pytest.approx(jiwer.cer(ref, hyp))
    else:
        assert s.wer[0] == 1.0


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
def test_term_found_is_contiguous_subsequence(ws):
    hyp = " ".join(ws)
    for i in range(len(ws)):
        for j in range(i + 1, len(ws) + 1):
            assert term_found(" ".join(ws[i:j]), hyp)
