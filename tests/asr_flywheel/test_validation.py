import json
import os

import pytest

from asr_flywheel.config import FlywheelConfig, ManifestConfig
from asr_flywheel.errors import InputError
from asr_flywheel.validation import load_manifest, validate_manifest
from helpers import write_manifest


def row(**kw):
    base = {
        "audio_filepath": "audio/a.wav",
        "text": "give cefazolin now",
        "term": "cefazolin",
        "entity_category": "drug",
    }
    base.update(kw)
    return {k: v for k, v in base.items() if v is not ...}


def problems(path, **kw):
    return [(p.line, p.field, p.reason) for p in validate_manifest(path, **kw).problems]


@pytest.fixture
def audio_dir(tmp_path, synth):
    synth("give cefazolin now", tmp_path / "audio" / "a.wav")
    synth("hold the dose", tmp_path / "audio" / "b.wav")
    return tmp_path / "audio"


def test_valid_manifest_has_no_problems_and_resolves_paths_against_manifest_dir(tmp_path, audio_dir, monkeypatch):
    m = write_manifest(
        tmp_path / "m.jsonl",
        [row(), row(audio_filepath="audio/b.wav", text="hold the dose", term="dose", entity_category="drug")],
    )
    monkeypatch.chdir("/")  # must not resolve against the CWD
    report = validate_manifest(m)
    assert report.ok, report.problems
    assert report.manifest.audio_paths[0] == str(audio_dir / "a.wav")
    assert report.audio[str(audio_dir / "a.wav")].samplerate == 16000


def test_malformed_json_and_non_object_rows(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text('{"audio_filepath": "x.wav", "text": "a"\n[1, 2]\n')
    got = problems(m, check_audio=False)
    assert got[0][:2] == (1, "(json)") and "malformed JSON" in got[0][2]
    assert got[1] == (2, "(json)", "expected a JSON object, got list")


def test_missing_and_empty_required_fields(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl", [{"text": "a"}, {"audio_filepath": "a.wav"}, {"audio_filepath": " ", "text": ""}]
    )
    got = problems(m, check_audio=False)
    assert (1, "audio_filepath", "missing required field") in got
    assert (2, "text", "missing required field") in got
    assert (3, "audio_filepath", "must not be empty") in got
    assert (3, "text", "must not be empty") in got


def test_wrong_types(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl",
        [
            row(text=5),
            row(audio_filepath="b.wav", duration="5s"),
            row(audio_filepath="c.wav", duration=-1),
            row(audio_filepath="d.wav", voice_id=3),
        ],
    )
    got = problems(m, check_audio=False)
    assert any(p[:2] == (1, "text") and "expected a string" in p[2] for p in got)
    assert any(p[:2] == (2, "duration") and "expected seconds" in p[2] for p in got)
    assert any(p[:2] == (3, "duration") and "must be > 0" in p[2] for p in got)
    assert any(p[:2] == (4, "voice_id") and "expected a string" in p[2] for p in got)


def test_null_duration_is_allowed(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [row(duration=None)])
    assert problems(m, check_audio=False) == []


def test_non_utf8_bom_and_control_characters(tmp_path):
    m = tmp_path / "m.jsonl"
    good = json.dumps(row()).encode()
    m.write_bytes(
        b"\xef\xbb\xbf"
        + good
        + b"\n"
        + b'{"audio_filepath": "b.wav", "text": "caf\xe9"}\n'
        + json.dumps(row(audio_filepath="c.wav", text="give\tcefazolin now")).encode()
        + b"\n"
        + json.dumps(row(audio_filepath="d.wav", text="give cefazolin\ufeff now")).encode()
        + b"\n"
        + json.dumps(row(audio_filepath="e.wav", text="give cefazolin \ufffd")).encode()
        + b"\n"
        + b"\xef\xbb\xbf"
        + json.dumps(row(audio_filepath="f.wav")).encode()
        + b"\n"
    )
    got = problems(m, check_audio=False)
    assert got[0][:2] == (1, "(encoding)") and "byte-order mark" in got[0][2]
    assert any(p[:2] == (2, "(encoding)") and "not valid UTF-8" in p[2] for p in got)
    assert (3, "text", "contains control character U+0009 at position 4") in got
    assert any(p[:2] == (4, "text") and "U+FEFF" in p[2] for p in got)
    assert any(p[:2] == (5, "text") and "U+FFFD" in p[2] for p in got)
    assert any(p[:2] == (6, "(encoding)") and "byte-order mark" in p[2] for p in got)


def test_unknown_category_and_ipa_source_and_configured_extension(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl", [row(entity_category="device"), row(audio_filepath="b.wav", ipa_source="guess")]
    )
    got = problems(m, check_audio=False)
    assert any(p[:2] == (1, "entity_category") and "unknown category 'device'" in p[2] for p in got)
    assert any(p[:2] == (2, "ipa_source") and "unknown source 'guess'" in p[2] for p in got)
    cfg = FlywheelConfig(manifest=ManifestConfig(categories=("drug", "device")))
    assert not any(p[1] == "entity_category" for p in problems(m, config=cfg, check_audio=False))


def test_term_must_occur_normalised_and_contiguous_in_text(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl",
        [
            row(text="Give Cefazolin, now.", term="cefazolin"),  # ok after normalisation
            row(audio_filepath="b.wav", text="give cefa zolin now", term="cefazolin"),
            row(audio_filepath="c.wav", text="start tartrate metoprolol", term="metoprolol tartrate"),
            row(audio_filepath="d.wav", term=None),  # category without term
            row(audio_filepath="e.wav", entity_category=None),  # term without category
            row(audio_filepath="f.wav", term="..."),
        ],
    )
    got = problems(m, check_audio=False)
    assert not any(p[0] == 1 for p in got)
    assert any(p[:2] == (2, "term") and "does not occur" in p[2] for p in got)
    assert any(p[:2] == (3, "term") and "does not occur" in p[2] for p in got)
    assert any(p[:2] == (4, "term") and "required when `entity_category`" in p[2] for p in got)
    assert any(p[:2] == (5, "entity_category") and "required when `term`" in p[2] for p in got)
    assert any(p[:2] == (6, "term") and "no words after normalisation" in p[2] for p in got)


def test_term_inside_a_longer_word_is_not_in_text_and_accents_fold(tmp_path):
    """Validation applies the same whole-word rule as KER: a substring of a longer word is not the term."""
    m = write_manifest(
        tmp_path / "m.jsonl",
        [
            row(text="start nystatin now", term="statin"),
            row(audio_filepath="b.wav", text="wash the face", term="ace"),
            row(audio_filepath="c.wav", text="cafe-au-lait spots", term="Café-au-lait"),
            row(audio_filepath="d.wav", text="Sjögren's syndrome", term="sjogrens"),
        ],
    )
    got = problems(m, check_audio=False)
    assert [(p[0], p[1]) for p in got] == [(1, "term"), (2, "term")]
    assert all("does not occur" in p[2] for p in got)


def test_reference_normalising_to_nothing_is_a_problem_named_by_line(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl",
        [row(), {"audio_filepath": "b.wav", "text": "..."}, {"audio_filepath": "c.wav", "text": "</s>"}],
    )
    with pytest.raises(InputError) as exc:
        load_manifest(m, check_audio=False)
    assert [(p.line, p.field) for p in exc.value.problems] == [(2, "text"), (3, "text")]
    assert "line 2: text: has no words after normalisation" in exc.value.render()


def test_text_with_only_punctuation_is_rejected(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [{"audio_filepath": "a.wav", "text": "?!"}])
    assert problems(m, check_audio=False) == [
        (1, "text", "has no words after normalisation (only punctuation or artefacts)")
    ]


def test_missing_unreadable_empty_audio(tmp_path, audio_dir):
    (tmp_path / "audio" / "empty.wav").write_bytes(b"")
    (tmp_path / "audio" / "junk.wav").write_bytes(b"this is not audio at all" * 10)
    os.mkdir(tmp_path / "audio" / "dir.wav")
    m = write_manifest(
        tmp_path / "m.jsonl",
        [
            row(audio_filepath="audio/missing.wav"),
            row(audio_filepath="audio/empty.wav"),
            row(audio_filepath="audio/junk.wav"),
            row(audio_filepath="audio/dir.wav"),
        ],
    )
    got = {p[0]: p[2] for p in problems(m)}
    assert got[1].startswith("audio file not found")
    assert got[2].startswith("audio file is empty (0 bytes)")
    assert got[3].startswith("unreadable audio")
    assert got[4].startswith("not a regular file")


def test_sample_rate_and_channel_mismatch_unless_configured(tmp_path, synth):
    import numpy as np
    import soundfile as sf

    sf.write(tmp_path / "stereo_22k.wav", np.zeros((22050, 2), dtype=np.float32), 22050)
    m = write_manifest(tmp_path / "m.jsonl", [row(audio_filepath="stereo_22k.wav")])
    got = problems(m)
    assert any("sample rate 22050 Hz, expected 16000 Hz" in p[2] for p in got)
    assert any("2 channels, expected 1" in p[2] for p in got)
    cfg = FlywheelConfig(manifest=ManifestConfig(resample=True, downmix=True))
    assert problems(m, config=cfg) == []


def test_duration_disagreeing_with_header(tmp_path, audio_dir):
    m = write_manifest(tmp_path / "m.jsonl", [row(duration=60.0)])
    assert any(p[1] == "duration" and "disagrees with the audio header" in p[2] for p in problems(m))


def test_duplicate_rows_name_both_lines(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl", [row(), row(text="give cefazolin later"), row(audio_filepath="./audio/a.wav")]
    )
    got = problems(m, check_audio=False)
    assert (2, "audio_filepath", "duplicate row: same audio as line 1") in got
    assert (3, "audio_filepath", "duplicate row: same audio as line 1") in got


def test_blank_lines_and_empty_file(tmp_path):
    m = tmp_path / "m.jsonl"
    m.write_text(json.dumps(row()) + "\n\n")
    assert problems(m, check_audio=False) == [
        (2, "(line)", "blank line; remove it (every line must be one JSON object)")
    ]
    m.write_text("")
    assert problems(m, check_audio=False) == [(0, "(file)", "manifest has no rows")]


def test_every_problem_is_reported_at_once_and_nothing_runs(tmp_path):
    m = write_manifest(
        tmp_path / "m.jsonl",
        [row(text=None), row(audio_filepath="b.wav", entity_category="x"), row(audio_filepath="c.wav")],
    )
    with pytest.raises(InputError) as exc:
        load_manifest(m, check_audio=False)
    lines = {p.line for p in exc.value.problems}
    assert lines == {1, 2}
    assert "2 row(s)" in exc.value.summary


def test_unknown_extra_fields_are_kept(tmp_path):
    m = write_manifest(tmp_path / "m.jsonl", [row(offset=0.0, lang="en")])
    assert load_manifest(m, check_audio=False).rows[0]["lang"] == "en"


def test_missing_manifest_file_is_a_clear_error(tmp_path):
    with pytest.raises(InputError, match="manifest not found"):
        validate_manifest(tmp_path / "nope.jsonl")


def test_a_manifest_version_stays_readable_after_appends_and_rewrites_are_caught(tmp_path):
    from asr_flywheel.manifest import append_rows
    from asr_flywheel.validation import load_manifest_version

    m = write_manifest(tmp_path / "m.jsonl", [row(audio_filepath=f"{i}.wav") for i in range(3)])
    v1 = load_manifest(m, check_audio=False).version
    append_rows(m, [row(audio_filepath="3.wav"), {"audio_filepath": "4.wav", "text": "?"}])  # one bad new row
    prefix = load_manifest_version(m, v1, 3, check_audio=False).manifest
    assert prefix.version == v1 and len(prefix) == 3  # the later bad row does not concern v1
    m.write_text(m.read_text().replace("0.wav", "zero.wav"))
    with pytest.raises(InputError, match="rewritten, not appended"):
        load_manifest_version(m, v1, 3, check_audio=False)


def test_a_truncated_wav_is_caught_even_with_no_duration_field(tmp_path, audio_dir):
    """libsndfile reports only the frames present (0.03 s here); the WAV header's own data size says 2.x s."""
    whole = (audio_dir / "a.wav").read_bytes()
    (audio_dir / "cut.wav").write_bytes(whole[: 44 + 960])
    m = write_manifest(tmp_path / "m.jsonl", [row(audio_filepath="audio/cut.wav", duration=None), row()])
    got = problems(m)
    assert len(got) == 1 and got[0][0] == 1
    assert got[0][2].startswith("truncated WAV: its header says ") and "the file holds 0.03 s" in got[0][2]
