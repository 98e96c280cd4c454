"""`flywheel build` with realistic voices and the judge, as users run it: every clip is heard, rows above the
limit go to the rejects file and never into the manifest, the rows-per-term arithmetic is checked before
synthesis, and a bad voice id exits 2 listing the installed voices."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_flywheel.build.options import BuildOptions
from asr_flywheel.flows.cli import main
from asr_flywheel.io import read_jsonl


def _csv(path: Path, body: str) -> Path:
    path.write_text("term,entity_category\n" + body)
    return path


def test_default_voices_are_realistic_voices_of_two_engines():
    voices = BuildOptions().voices
    assert len(set(voices)) >= 4 and len({v.split(":")[0] for v in voices}) >= 2
    assert not any(v.startswith("espeak") for v in voices)


def test_rejects_are_listed_with_the_reason_and_never_appended(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    terms = _csv(tmp_path / "t.csv", "metoprolol,drug\nsternum,anatomy\n")
    argv = ["build", str(terms), "--out", str(out), "--voices", "flite:rms,espeak:en-us", "--contexts", "dictation"]
    assert main([*argv, "--judge-max", "0.2", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    kept, rejected = read_jsonl(out), read_jsonl(tmp_path / "m.rejects.jsonl")
    assert rejected, "espeak-ng's speech should fail a 0.2 carrier-WER limit at least once"
    assert len(kept) + len(rejected) == 4 and report["judge"]["rejected"] == len(rejected)
    assert all(r["judge_carrier_wer"] <= 0.2 for r in kept)
    assert all(r["judge_carrier_wer"] > 0.2 and "carrier-word WER" in r["reason"] for r in rejected)
    assert not {r["audio_filepath"] for r in rejected} & {r["audio_filepath"] for r in kept}
    assert report["rows_added"] == len(kept)
    assert set(report["judge"]["by_voice"]) == {"flite:rms", "espeak:en-us"}
    every = [r["judge_carrier_wer"] for r in [*kept, *rejected]]
    assert report["judge"]["overall"]["n"] == 4
    assert report["judge"]["overall"]["mean"] == pytest.approx(sum(every) / 4, abs=1e-4)


def test_the_summary_prints_carrier_wer_per_voice_and_noise_and_the_reject_count(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    terms = _csv(tmp_path / "t.csv", "heparin,drug\n")
    argv = ["build", str(terms), "--out", str(out), "--voices", "flite:kal16,espeak:en-gb", "--contexts", "handoff"]
    assert main([*argv, "--judge-max", "0"]) == 0
    said = capsys.readouterr().out
    assert "judge cmu/pocketsphinx-en-us: carrier-word WER of 2 new clip(s)" in said
    assert "all " in said and "voice flite:kal16" in said and "voice espeak:en-gb" in said and "noise clean" in said
    rejected = read_jsonl(tmp_path / "m.rejects.jsonl")
    if rejected:
        assert f"{len(rejected)} row(s) above --judge-max 0 were not appended" in said


def test_more_rows_per_term_than_can_be_distinct_exits_2_with_the_arithmetic(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    terms = _csv(tmp_path / "t.csv", "heparin,drug\nsternum,anatomy\n")
    argv = ["build", str(terms), "--out", str(out), "--voices", "flite:rms,flite:awb", "--contexts", "handoff"]
    assert main([*argv, "--rows-per-term", "7", "--no-judge"]) == 2
    said = "".join(capsys.readouterr())
    assert "line 2" in said and "line 3" in said
    assert "at most 6 distinct rows (3 sentences in 1 context(s) × 2 voice(s) × 1 noise level(s)), not 7" in said
    assert not out.exists() and not (tmp_path / "audio").exists()
    assert main([*argv, "--rows-per-term", "6", "--no-judge", "--json"]) == 0
    rows = read_jsonl(out)
    assert len(rows) == 12 and len({(r["term"], r["text"], r["voice_id"]) for r in rows}) == 12


def test_a_bad_voice_id_exits_2_listing_installed_voices(tmp_path, capsys):
    terms = _csv(tmp_path / "t.csv", "heparin,drug\n")
    code = main(["build", str(terms), "--out", str(tmp_path / "m.jsonl"), "--voices", "flite:nobody,acme:x"])
    said = "".join(capsys.readouterr())
    assert code == 2
    assert "'flite:nobody': flite has no voice 'nobody'" in said and "'acme:x': no engine 'acme'" in said
    assert "installed voices: " in said and "festival:slt_hts" in said


def test_cmudict_lexicon_tier_speaks_dictionary_words_and_records_the_phones(tmp_path, capsys):
    out = tmp_path / "m.jsonl"
    terms = _csv(tmp_path / "t.csv", "aspirin,drug\nzorbaxitol,drug\n")
    argv = ["build", str(terms), "--out", str(out), "--voices", "flite:rms", "--contexts", "handoff"]
    assert main([*argv, "--lexicon", "cmudict", "--no-judge", "--json"]) == 0
    rows = {r["term"]: r for r in read_jsonl(out)}
    assert (
        rows["aspirin"]["ipa_source"] == "lexicon" and rows["aspirin"]["spoken_phones"] == "ae s p r ih n"
    )  # CMU: AE1 S P R IH0 N
    assert rows["zorbaxitol"]["ipa_source"] == "g2p" and rows["zorbaxitol"]["spoken_phones"]
