"""The scoring verbs are the flow's steps (one path), and bad input on them is exit 2 with a clear message."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main
from helpers import CLINICAL_SENTENCES

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "clinical"


def write_hyps(path: Path, manifest: Path, texts: list[str]) -> Path:
    path.write_text(
        "".join(
            json.dumps({"audio_filepath": str(manifest.parent / "audio" / f"row{i}.wav"), "hyp": t}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    return path


@pytest.fixture
def scored(clinical_manifest, tmp_path) -> Path:
    """metrics.json of the 8-row clinical manifest with perfect hypotheses."""
    hyps = write_hyps(tmp_path / "h.jsonl", clinical_manifest, [t for t, _, _ in CLINICAL_SENTENCES])
    assert main(["score", str(clinical_manifest), "--hyps", str(hyps), "--out", str(tmp_path / "c1")]) == 0
    return tmp_path / "c1" / "metrics.json"


def run(argv: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of one CLI call (argparse errors included)."""
    try:
        code = main(argv)
    except SystemExit as exc:
        code = exc.code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return code, err


def test_score_renders_the_leaderboard_with_the_configured_pronunciation_sources(tmp_path, capsys):
    """The leaderboard CLI `score` writes is the flow's: the g2p delta names the configured good sources."""
    cfg = tmp_path / "fw.toml"
    cfg.write_text('[gate]\ngood_sources = ["override"]\ng2p_sources = ["magpie_g2p"]\n')
    out = tmp_path / "c1"
    argv = ["score", str(EXAMPLE / "manifest.jsonl"), "--hyps", str(EXAMPLE / "baseline_hyps.jsonl"), "--out"]
    assert main([*argv, str(out), "--cycle", "1"]) == 0
    assert main(["--config", str(cfg), *argv, str(tmp_path / "c1-cfg"), "--cycle", "1"]) == 0
    default = (out / "leaderboard_cycle1.md").read_text()
    configured = (tmp_path / "c1-cfg" / "leaderboard_cycle1.md").read_text()
    gap = [line for line in configured.splitlines() if line.startswith("**Pronunciation gap:**")]
    assert gap and "override rows" in gap[0] and "merriam-webster" not in gap[0]
    assert gap[0] not in default  # the configuration changed what the leaderboard states
    assert (out / "offline_hyps.jsonl").is_file()  # the step's files, as inside a cycle


def test_gate_writes_gate_md_like_the_cycle(scored, capsys):
    assert main(["gate", str(scored)]) == 0
    md = (scored.parent / "gate.md").read_text()
    assert md.startswith("# Gate: **GROW_MANIFEST**") and md in capsys.readouterr().out


def test_score_with_a_directory_as_hyps_is_refused(clinical_manifest, tmp_path, capsys):
    code, err = run(["score", str(clinical_manifest), "--hyps", str(tmp_path), "--out", str(tmp_path / "o")], capsys)
    assert code == 2 and "--hyps" in err and "is a directory" in err


def test_score_with_a_file_as_out_is_refused_before_reading_anything(clinical_manifest, tmp_path, capsys):
    out = tmp_path / "taken.txt"
    out.write_text("x")
    code, err = run(["score", str(clinical_manifest), "--hyps", "missing.jsonl", "--out", str(out)], capsys)
    assert code == 2 and f"--out {out} is a file" in err


@pytest.mark.parametrize("verb", ["score", "split", "eval", "gate", "decide"])
def test_an_unwritable_out_is_refused_before_any_compute(verb, clinical_manifest, scored, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where a directory would have to be")
    out = str(blocker / "sub")
    argv = {
        "score": ["score", str(clinical_manifest), "--hyps", "h.jsonl", "--out", out],
        "split": ["split", str(clinical_manifest), "--out", out],
        "eval": ["eval", str(clinical_manifest), "--model", "nvidia/parakeet-tdt-0.6b-v2", "--out", out],
        "gate": ["gate", str(scored), "--out", out],
        "decide": ["decide", str(scored), str(scored), "--out", out],
    }[verb]
    code, err = run(argv, capsys)
    assert code == 2 and "is not writable" in err


def test_gate_names_every_field_of_the_wrong_type(scored, capsys):
    metrics = json.loads(scored.read_text())
    metrics["n"] = "eight"
    metrics["ker_by_entity_category"]["drug"]["ker"] = "high"
    metrics["ker_by_ipa_source"] = []
    scored.write_text(json.dumps(metrics))
    code, err = run(["gate", str(scored)], capsys)
    assert code == 2 and "the gate and the decision cannot read these fields" in err
    for field in ("file: n:", "ker_by_entity_category.drug.ker:", "ker_by_ipa_source:"):
        assert field in err, err


def test_watch_once_on_a_missing_manifest(tmp_path, capsys):
    code, err = run(["watch", "--once", str(tmp_path / "nope.jsonl")], capsys)
    assert code == 2 and "not found" in err and "nope.jsonl" in err


def test_eval_batch_size_must_be_positive(clinical_manifest, tmp_path, capsys):
    code, err = run(
        ["eval", str(clinical_manifest), "--model", "m.nemo", "--out", str(tmp_path), "--batch-size", "0"], capsys
    )
    assert code == 2 and "--batch-size: must be at least 1, got 0" in err


def test_eval_with_a_missing_model_file_says_so(clinical_manifest, tmp_path, capsys):
    code, err = run(
        ["eval", str(clinical_manifest), "--model", str(tmp_path / "missing.nemo"), "--out", str(tmp_path / "o")],
        capsys,
    )
    assert code == 2 and f"model file not found: {tmp_path / 'missing.nemo'}" in err
    assert not (tmp_path / "o").exists()


def test_eval_refuses_a_file_as_out_before_transcribing(clinical_manifest, tmp_path, capsys):
    out = tmp_path / "results.json"
    out.write_text("{}")
    code, err = run(
        ["eval", str(clinical_manifest), "--model", "nvidia/parakeet-tdt-0.6b-v2", "--out", str(out)], capsys
    )
    assert code == 2 and "is a file" in err


@pytest.mark.parametrize("value", ["0", "1", "1.5", "-0.2", "half"])
def test_split_val_fraction_must_be_inside_zero_one(value, clinical_manifest, tmp_path, capsys):
    code, err = run(["split", str(clinical_manifest), "--out", str(tmp_path / "s"), "--val-fraction", value], capsys)
    assert code == 2 and "--val-fraction" in err


def test_split_holdout_terms_must_not_be_negative(clinical_manifest, tmp_path, capsys):
    code, err = run(["split", str(clinical_manifest), "--out", str(tmp_path / "s"), "--holdout-terms", "-1"], capsys)
    assert code == 2 and "--holdout-terms: must be at least 0" in err


@pytest.mark.parametrize("verb", ["gate", "decide", "split"])
def test_unknown_categories_on_the_command_line_are_refused(verb, clinical_manifest, scored, tmp_path, capsys):
    argv = {
        "gate": ["gate", str(scored), "--priority", "drugs"],
        "decide": ["decide", str(scored), str(scored), "--targets", "drug", "drugz"],
        "split": ["split", str(clinical_manifest), "--out", str(tmp_path / "s"), "--priority", "drugs"],
    }[verb]
    code, err = run(argv, capsys)
    assert code == 2 and "unknown categor" in err and "known: drug, procedure" in err
    assert not (scored.parent / "decision.json").exists()


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux /proc: a directory no one can create files in")
@pytest.mark.parametrize("verb", ["score", "gate"])
def test_an_out_in_a_directory_that_refuses_files_is_refused_even_for_root(verb, clinical_manifest, scored, capsys):
    """os.access says yes to root for /proc; the check must really try to create a file there."""
    out = "/proc/flywheel-out"
    argv = {
        "score": ["score", str(clinical_manifest), "--hyps", "h.jsonl", "--out", out],
        "gate": ["gate", str(scored), "--out", out],
    }[verb]
    code, err = run(argv, capsys)
    assert code == 2 and f"--out {out} is not writable" in err


def test_decide_names_wrong_types_in_metrics_json_instead_of_crashing(scored, tmp_path, capsys):
    """Two metrics files only (no per_sample.jsonl): the unpaired decision reads the same fields as the gate."""
    before, after = tmp_path / "b" / "metrics.json", tmp_path / "a" / "metrics.json"
    metrics = json.loads(scored.read_text())
    after.parent.mkdir()
    after.write_text(json.dumps(metrics))
    metrics["ker_by_entity_category"]["drug"] = "x"
    before.parent.mkdir()
    before.write_text(json.dumps(metrics))
    code, err = run(["decide", str(before), str(after), "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "ker_by_entity_category.drug: expected an object, got 'x'" in err
    before.write_text("[1, 2]")
    code, err = run(["decide", str(before), str(after), "--out", str(tmp_path / "d")], capsys)
    assert code == 2 and "expected a JSON object, got list" in err


@pytest.mark.parametrize("verb", ["score", "eval"])
def test_a_negative_cycle_number_is_refused(verb, clinical_manifest, tmp_path, capsys):
    source = ["--hyps", "h.jsonl"] if verb == "score" else ["--model", "m.nemo"]
    code, err = run([verb, str(clinical_manifest), *source, "--out", str(tmp_path / "o"), "--cycle", "-1"], capsys)
    assert code == 2 and "--cycle: must be at least 0, got -1" in err


def test_split_min_heldout_per_term_must_not_be_negative(clinical_manifest, tmp_path, capsys):
    argv = ["split", str(clinical_manifest), "--out", str(tmp_path / "s"), "--min-heldout-per-term", "-1"]
    code, err = run(argv, capsys)
    assert code == 2 and "--min-heldout-per-term: must be at least 0" in err and not (tmp_path / "s").exists()


def test_score_on_a_full_disk_leaves_no_output_that_looks_usable(clinical_manifest, tmp_path, capsys):
    """A real tmpfs with a few kilobytes free: some of the files fit, the set does not. Nothing of it may remain,
    or `gate` would read a metrics.json and answer as if the scoring had finished."""
    from helpers import small_filesystem

    hyps = write_hyps(tmp_path / "h.jsonl", clinical_manifest, [t for t, _, _ in CLINICAL_SENTENCES])
    with small_filesystem(tmp_path / "disk", free_bytes=12 * 1024) as disk:
        code, err = run(["score", str(clinical_manifest), "--hyps", str(hyps), "--out", str(disk / "out")], capsys)
        assert code == 1 and f"no space left on the device holding {disk / 'out'}" in err
        assert sorted(p.name for p in (disk / "out").iterdir()) == []  # no metrics.json, no partial set, no temp
        assert run(["gate", str(disk / "out" / "metrics.json")], capsys)[0] == 2


@pytest.mark.parametrize("interval", ["-5", "nan", "0"])
def test_watch_refuses_an_interval_that_is_not_a_positive_number(clinical_manifest, interval, capsys):
    code, err = run(["watch", "--once", "--interval", interval, str(clinical_manifest)], capsys)
    assert code == 2 and "--interval: must be a positive number of seconds" in err


def test_watch_and_deployments_without_a_server_say_where_they_looked_and_how_to_start_one(
    clinical_manifest, monkeypatch, capsys
):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from helpers import free_ports

    with temporary_settings(updates={PREFECT_API_URL: ""}):
        code, err = run(["watch", "--once", str(clinical_manifest)], capsys)
        assert code == 2 and "no Prefect API to publish to: set PREFECT_API_URL" in err
    dead = f"http://127.0.0.1:{free_ports(1)[0]}/api"
    with temporary_settings(updates={PREFECT_API_URL: dead}):
        for argv in (["watch", "--once", str(clinical_manifest)], ["server", "deployments"]):
            code, err = run(argv, capsys)
            assert code == 2 and f"no Prefect server answers at {dead}" in err and "flywheel server up" in err
