import sys
import unicodedata

from hypothesis import given
from hypothesis import strategies as st

from asr_flywheel.normalize import (
    PUNCTUATION_SCAN_LIMIT,
    _ascii_rows,
    _max_punctuation_codepoint,
    _unicode_rows,
    normalize,
    normalize_many,
)


def test_lowercases_removes_punctuation_and_collapses_whitespace():
    assert normalize("  Give  Cefazolin,   2 grams!\t") == "give cefazolin 2 grams"


def test_keeps_ascii_hyphen_and_deletes_other_punctuation_without_inserting_space():
    assert normalize("piperacillin-tazobactam; patient's (stable).") == "piperacillin-tazobactam patients stable"


def test_unicode_quotes_are_punctuation():
    assert normalize("the patient’s “cefazolin”") == normalize('the patient\'s "cefazolin"') == "the patients cefazolin"


def test_nfkd_folds_compatibility_characters():
    # ligature fi, full-width letters and a no-break space all fold to plain text
    assert normalize("ﬁbrillation ＣＴ\u00a0scan") == "fibrillation ct scan"


def test_accents_decompose_consistently():
    assert normalize("Café") == normalize("cafe\u0301")


def test_model_artefacts_are_stripped():
    assert normalize("give cefazolin</s>") == "give cefazolin"
    assert normalize("<s> hold <pad>the dose <epsilon></s>") == "hold the dose"


def test_newlines_are_whitespace():
    assert normalize_many(["line one\nline two", "x"]) == ["line one line two", "x"]


def test_empty_and_punctuation_only_rows_normalise_to_empty():
    assert normalize_many(["", "...", "  ", "!?"]) == ["", "", "", ""]


def test_unicode_punctuation_is_assigned_only_below_the_scan_limit():
    # Guards the speed-up in _punctuation_patterns: if a future Unicode adds punctuation above plane 1,
    # this fails and the limit must move.
    assert _max_punctuation_codepoint() < PUNCTUATION_SCAN_LIMIT <= sys.maxunicode


def test_supplementary_plane_punctuation_is_removed():
    aegean_separator = "\U00010100"
    assert unicodedata.category(aegean_separator) == "Po"
    assert normalize(f"a{aegean_separator}b") == "ab"


text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=60)
ascii_text = st.text(alphabet=st.characters(max_codepoint=127), max_size=60)


@given(text)
def test_normalisation_is_idempotent(s):
    once = normalize(s)
    assert normalize(once) == once


@given(st.lists(text, max_size=8))
def test_batch_equals_one_at_a_time(texts):
    assert normalize_many(texts) == [normalize(t) for t in texts]


@given(st.lists(ascii_text.map(lambda s: s.replace("\n", " ")), min_size=1, max_size=6))
def test_ascii_fast_path_agrees_with_unicode_path(texts):
    blob = "\n".join(texts)
    assert _ascii_rows(blob) == _unicode_rows(blob)


@given(text)
def test_output_has_single_spaces_and_no_edges(s):
    out = normalize(s)
    assert out == " ".join(out.split())


def test_combining_marks_are_dropped_so_accented_and_plain_spellings_match():
    assert normalize("Café-au-lait") == normalize("cafe-au-lait") == "cafe-au-lait"
    assert normalize("Sjögren's") == "sjogrens"
    assert normalize("Ménière’s disease") == "menieres disease"


def test_every_mark_and_punctuation_character_is_inside_the_deletion_scan():
    # Guards the speed-up in _punctuation_patterns for combining marks (which reach into plane 14).
    from asr_flywheel.normalize import _deleted_outside_scan

    assert _deleted_outside_scan() == []
