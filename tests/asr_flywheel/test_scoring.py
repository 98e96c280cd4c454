import csv
import json

import pytest

from asr_flywheel.errors import InputError
from asr_flywheel.hyps import align_hyps, read_hyps
from asr_flywheel.score_files import load_per_sample, per_sample_rows, write_score_outputs
from asr_flywheel.scoring import BREAKDOWNS, score_manifest
from asr_flywheel.validation import load_manifest
from helpers import CLINICAL_SENTENCES, write_manifest


def write_hyps(path, pairs):
    path.write_text("".join(json.dumps({"audio_filepath": a, "hyp": h}) + "\n" for a, h in pairs))
    return path


@pytest.fixture
def scored(clinical_manifest, tmp_path):
    m = load_manifest(clinical_manifest)
    # Row 0 mangles the drug term; row 4 drops a word elsewhere; the rest are perfect.
    hyps = [t for t, _, _ in CLINICAL_SENTENCES]
    hyps[0] = "give cefa zolin two grams before the incision</s>"
    hyps[4] = "there is dilation of the left ventricle"
    h = write_hyps(tmp_path / "hyps.jsonl", zip(m.audio_paths, hyps, strict=True))
    report = score_manifest(m, align_hyps(m, read_hyps(h)), model_name="tiny", cycle=3)
    return report, write_score_outputs(report, tmp_path / "out")


def test_headline_metrics(scored):
    report, _ = scored
    m = report.metrics.to_dict()
    assert m["n"] == 8 and m["ker_n"] == 8
    assert m["ker"] == pytest.approx(1 / 8)
    assert m["ser"] == pytest.approx(2 / 8)
    assert m["ker_ci_low"] <= m["ker"] <= m["ker_ci_high"]
    assert m["wer_corpus"] == pytest.approx((2 + 1) / sum(len(t.split()) for t, _, _ in CLINICAL_SENTENCES))


def test_breakdowns_have_rate_n_and_ci(scored):
    m = scored[0].metrics.to_dict()
    for key in BREAKDOWNS:
        assert m[key], key
        for entry in m[key].values():
            assert set(entry) >= {"ker", "n", "ci_low", "ci_high"}
            assert entry["ci_low"] <= entry["ker"] <= entry["ci_high"]
    assert m["ker_by_entity_category"]["drug"] == pytest.approx({"ker": 1 / 3, "n": 3, "ci_low": 0.0, "ci_high": 1.0})
    assert next(iter(m["ker_by_term"])) == "cefazolin"  # worst first
    assert m["ker_by_term"]["cefazolin"]["entity_category"] == "drug"


def test_files_written_with_spec_names_and_columns(scored):
    _, paths = scored
    assert {p.name for p in paths.values()} == {
        "per_sample.jsonl",
        "results.csv",
        "metrics.json",
        "leaderboard_cycle3.md",
    }
    with open(paths["results"]) as fh:
        rows = list(csv.DictReader(fh))
    assert list(rows[0]) == ["audio_filepath", "term", "entity_category", "wer", "cer", "ker", "ser"]
    assert rows[0]["ker"] == "1" and rows[1]["ker"] == "0"
    per = load_per_sample(paths["metrics"])
    assert per[0]["hyp"].endswith("</s>") and per[0]["ker"] == 1 and per[0]["wer"] == 0.285714
    assert per[0]["ref"] == CLINICAL_SENTENCES[0][0]
    assert {"term", "entity_category", "ipa_source", "noise_level", "voice_id", "context_type"} <= set(per[0])
    assert json.loads(paths["metrics"].read_text())["model"] == "tiny"


def test_missing_and_orphan_hypotheses_are_all_listed(clinical_manifest, tmp_path):
    m = load_manifest(clinical_manifest)
    h = write_hyps(
        tmp_path / "hyps.jsonl", [(m.audio_paths[0], "x"), ("/elsewhere/a.wav", "y"), ("/elsewhere/b.wav", "z")]
    )
    with pytest.raises(InputError) as exc:
        align_hyps(m, read_hyps(h))
    text = exc.value.render()
    assert "7 row(s) without a hypothesis, 2 hypothesis(es) without a row" in text
    assert "line 2: audio_filepath: no hypothesis" in text and "/elsewhere/b.wav" in text


def test_bad_hypotheses_file_lists_every_line(tmp_path):
    h = tmp_path / "h.jsonl"
    h.write_text(
        '{"audio_filepath": "a.wav", "hyp": null}\nnot json\n{"hyp": "x"}\n{"audio_filepath": "b.wav", "hyp": ""}\n'
        '{"audio_filepath": "./b.wav", "hyp": "again"}\n'
    )
    with pytest.raises(InputError) as exc:
        read_hyps(h)
    assert [p.line for p in exc.value.problems] == [1, 2, 3, 5]


def test_empty_hypothesis_string_is_valid(tmp_path):
    h = tmp_path / "h.jsonl"
    h.write_text('{"audio_filepath": "a.wav", "hyp": ""}\n')
    assert read_hyps(h) == {str(tmp_path / "a.wav"): ""}


def test_scoring_is_deterministic(clinical_manifest, tmp_path):
    m = load_manifest(clinical_manifest)
    hyps = ["x"] * len(m)
    a = write_score_outputs(score_manifest(m, hyps), tmp_path / "a")
    b = write_score_outputs(score_manifest(m, hyps), tmp_path / "b")
    for k in a:
        assert a[k].read_bytes() == b[k].read_bytes(), k


def test_csv_quotes_fields_that_need_it(tmp_path, synth):
    synth("give cefazolin now", tmp_path / "a,b.wav")
    m = load_manifest(
        write_manifest(
            tmp_path / "m.jsonl",
            [
                {
                    "audio_filepath": "a,b.wav",
                    "text": "give cefazolin now",
                    "term": "cefazolin",
                    "entity_category": "drug",
                }
            ],
        )
    )
    out = write_score_outputs(score_manifest(m, ["give cefazolin now"]), tmp_path / "o")
    with open(out["results"]) as fh:
        rows = list(csv.DictReader(fh))
    assert rows[0]["audio_filepath"].endswith("a,b.wav")


def in_memory(rows):
    from pathlib import Path

    from asr_flywheel.manifest import Manifest

    return Manifest(Path("/data/m.jsonl"), rows, list(range(1, len(rows) + 1)), [r["audio_filepath"] for r in rows])


def drug_row(i, text, term):
    return {"audio_filepath": f"/data/{i}.wav", "text": text, "term": term, "entity_category": "drug"}


def test_reference_empty_after_normalisation_is_an_input_error_naming_its_line():
    m = in_memory([drug_row(0, "give cefazolin now", "cefazolin"), {"audio_filepath": "/data/1.wav", "text": "..."}])
    with pytest.raises(InputError) as exc:
        score_manifest(m, ["give cefazolin now", "x"])
    assert [(p.line, p.field) for p in exc.value.problems] == [(2, "text")]


def test_missed_terms_list_their_most_frequent_misrecognitions_with_counts():
    rows = [drug_row(i, "give cefazolin two grams now", "cefazolin") for i in range(6)]
    rows.append(drug_row(6, "start metoprolol tartrate daily", "metoprolol tartrate"))
    hyps = ["give cefa zolin two grams now"] * 3 + ["give cefazolin two grams now", "give now", "give sefazolin two"]
    hyps.append("start metoprolol tartrate daily")
    report = score_manifest(in_memory(rows), hyps)
    metrics = report.metrics.to_dict()
    mis = metrics["ker_by_term"]["cefazolin"]["misrecognitions"]
    assert mis["top"][0] == {"text": "cefa zolin", "count": 3}
    assert {"text": "", "count": 1} in mis["top"] and mis["missed_rows"] == 5
    assert "misrecognitions" not in metrics["ker_by_term"]["metoprolol tartrate"]  # never missed
    from asr_flywheel.leaderboard import render_leaderboard

    board = render_leaderboard(report.metrics)
    assert '| cefazolin | drug | "cefa zolin" (3×), ' in board


def test_seen_and_unseen_terms_are_reported_apart_and_marked_per_row():
    rows = [drug_row(i, "give cefazolin now", "cefazolin") for i in range(4)]
    rows += [drug_row(4 + i, "start nystatin now", "Nystatin") for i in range(2)]
    hyps = ["give cefazolin now"] * 3 + ["give cefa zolin now"] + ["start statin now"] * 2
    report = score_manifest(in_memory(rows), hyps, seen_terms={"Cefazolin"}, train_audio={"/data/0.wav"})
    m = report.metrics.to_dict()
    assert m["ker_by_seen"]["seen"]["ker"] == pytest.approx(0.25) and m["ker_by_seen"]["seen"]["n"] == 4
    assert m["ker_by_seen"]["unseen"] == pytest.approx({"ker": 1.0, "n": 2, "ci_low": 1.0, "ci_high": 1.0})
    assert m["ker_by_term"]["nystatin"]["seen"] is False and m["ker_by_term"]["cefazolin"]["seen"] is True
    assert m["training_rows"] == 1
    assert [r["seen_term"] for r in per_sample_rows(report)] == [True] * 4 + [False] * 2
    from asr_flywheel.leaderboard import render_leaderboard

    assert "## Seen vs unseen terms" in render_leaderboard(m)


def test_without_a_split_there_is_no_seen_breakdown_and_training_rows_are_unknown(clinical_manifest):
    m = load_manifest(clinical_manifest, check_audio=False)
    metrics = score_manifest(m, ["x"] * len(m)).metrics.to_dict()
    assert "ker_by_seen" not in metrics and metrics["training_rows"] is None


def test_hypotheses_accept_nemo_pred_text(tmp_path):
    h = tmp_path / "h.jsonl"
    h.write_text(
        '{"audio_filepath": "a.wav", "pred_text": "give cefazolin"}\n{"audio_filepath": "b.wav", "hyp": "x"}\n'
    )
    assert read_hyps(h) == {str(tmp_path / "a.wav"): "give cefazolin", str(tmp_path / "b.wav"): "x"}


def test_relative_hyp_paths_fall_back_to_the_manifest_directory(clinical_manifest, tmp_path):
    from asr_flywheel.hyps import load_hyps

    m = load_manifest(clinical_manifest, check_audio=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    rels = [r["audio_filepath"] for r in m.rows]  # relative to the manifest's directory, not to elsewhere/
    h = write_hyps(elsewhere / "hyps.jsonl", [(a, f"hyp {i}") for i, a in enumerate(rels)])
    assert load_hyps(h, m) == [f"hyp {i}" for i in range(len(m))]
    h2 = write_hyps(elsewhere / "bad.jsonl", [("nowhere/x.wav", "y")])
    with pytest.raises(InputError, match="resolved against the hypotheses file's directory"):
        load_hyps(h2, m)


def test_seen_and_unseen_voices_are_reported_apart_and_marked_per_row():
    rows = [{**drug_row(i, "give cefazolin now", "cefazolin"), "voice_id": "flite:rms"} for i in range(4)]
    rows += [{**drug_row(4 + i, "give cefazolin now", "cefazolin"), "voice_id": "festival:slt_hts"} for i in range(2)]
    hyps = ["give cefazolin now"] * 4 + ["give cefa zolin now", "give cefazolin now"]
    report = score_manifest(in_memory(rows), hyps, seen_terms={"cefazolin"}, seen_voices={"flite:rms"})
    by_voice = report.metrics.to_dict()["ker_by_seen_voice"]
    assert by_voice["seen"]["ker"] == 0.0 and by_voice["seen"]["n"] == 4
    assert by_voice["unseen"]["ker"] == pytest.approx(0.5) and by_voice["unseen"]["n"] == 2
    assert [r["seen_voice"] for r in per_sample_rows(report)] == [True] * 4 + [False] * 2
    from asr_flywheel.leaderboard import render_leaderboard

    assert "## Seen vs unseen voices" in render_leaderboard(report.metrics)
