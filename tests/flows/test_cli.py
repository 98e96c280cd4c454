import json
import subprocess
import sys
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main
from helpers import CLINICAL_SENTENCES, write_manifest


def write_hyps(path, manifest_dir, texts):
    path.write_text(
        "".join(
            json.dumps({"audio_filepath": str(manifest_dir / "audio" / f"row{i}.wav"), "hyp": t}) + "\n"
            for i, t in enumerate(texts)
        )
    )
    return path


def test_help_does_not_import_heavy_libraries():
    code = (
        "import sys; from asr_flywheel.flows.cli import build_parser; build_parser(); "
        "print(sorted(m for m in ('torch', 'prefect', 'nemo', 'transformers') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    flywheel = Path(sys.executable).with_name("flywheel")  # the console script installed with the project
    assert subprocess.run([str(flywheel), "--help"], capture_output=True).returncode == 0


def test_validate_exit_codes_and_json(clinical_manifest, tmp_path, capsys):
    assert main(["validate", str(clinical_manifest)]) == 0
    assert "8 rows valid (audio checked)" in capsys.readouterr().out
    bad = write_manifest(tmp_path / "bad.jsonl", [{"audio_filepath": "nope.wav", "text": "a", "entity_category": "x"}])
    assert main(["validate", str(bad), "--json"]) == 2
    out = capsys.readouterr()
    problems = json.loads(out.out)
    assert {p["field"] for p in problems} == {"audio_filepath", "entity_category", "term"}
    assert all(p["line"] == 1 for p in problems)
    assert "line 1: audio_filepath: audio file not found" in out.err


def test_score_gate_split_decide_chain(clinical_manifest, tmp_path, capsys):
    d = clinical_manifest.parent
    refs = [t for t, _, _ in CLINICAL_SENTENCES]
    base = write_hyps(
        tmp_path / "base.jsonl", d, ["give cefa zolin two grams", "start metoprolol", "hold the vanco dose", *refs[3:]]
    )
    assert (
        main(["score", str(clinical_manifest), "--hyps", str(base), "--out", str(tmp_path / "c1"), "--cycle", "1"]) == 0
    )
    assert (tmp_path / "c1" / "leaderboard_cycle1.md").exists()

    assert main(["gate", str(tmp_path / "c1" / "metrics.json"), "--priority", "drug"]) == 0
    gate = json.loads((tmp_path / "c1" / "gate.json").read_text())
    assert gate["outcome"] == "GROW_MANIFEST" and gate["proceed"] is False  # 8 rows < 100
    assert main(["gate", str(tmp_path / "c1" / "metrics.json"), "--force-finetune", "demo run"]) == 0
    assert json.loads((tmp_path / "c1" / "gate.json").read_text())["proceed"] is True

    # 3 drug rows < 5 → the split refuses, naming the category
    assert main(["split", str(clinical_manifest), "--out", str(tmp_path / "split")]) == 2
    assert "'drug' has 3 row(s)" in capsys.readouterr().err
    assert (
        main(
            [
                "split",
                str(clinical_manifest),
                "--out",
                str(tmp_path / "split"),
                "--priority",
                "anatomy",
                "--no-audio-check",
            ]
        )
        == 2
    )
    cfg = tmp_path / "fw.toml"
    cfg.write_text("[gate]\nmin_priority_rows = 3\n")
    assert main(["--config", str(cfg), "split", str(clinical_manifest), "--out", str(tmp_path / "split")]) == 0
    val = [json.loads(x) for x in (tmp_path / "split" / "validation.jsonl").read_text().splitlines()]
    assert val and all(v["duration"] > 0 for v in val)  # durations filled from the audio headers

    after = write_hyps(tmp_path / "after.jsonl", d, [*refs[:2], "hold the vanco dose", *refs[3:]])  # 2 of 3 drugs fixed
    assert (
        main(["score", str(clinical_manifest), "--hyps", str(after), "--out", str(tmp_path / "c2"), "--cycle", "2"])
        == 0
    )
    assert main(["decide", str(tmp_path / "c1" / "metrics.json"), str(tmp_path / "c2" / "metrics.json")]) == 0
    decision = json.loads((tmp_path / "c2" / "decision.json").read_text())
    assert decision["decision"] == "KEEP" and decision["ker_before"] == 1.0
    assert decision["ker_after"] == pytest.approx(1 / 3) and decision["significant"] is False
    assert (
        main(
            [
                "decide",
                str(tmp_path / "c1" / "metrics.json"),
                str(tmp_path / "c2" / "metrics.json"),
                "--require-significance",
            ]
        )
        == 0
    )
    assert json.loads((tmp_path / "c2" / "decision.json").read_text())["decision"] == "INSUFFICIENT_EVIDENCE"
    assert main(["compare", str(tmp_path / "c1" / "metrics.json"), str(tmp_path / "c2" / "metrics.json")]) == 0
    assert "| drug | 3 | 1.000 | 0.333 |" in capsys.readouterr().out


@pytest.mark.parametrize(
    "argv",
    [["gate", "missing.json"], ["decide", "a.json", "b.json"], ["score", "m.jsonl", "--hyps", "h", "--out", "o"]],
)
def test_missing_inputs_exit_2_with_a_message(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    assert "not found" in capsys.readouterr().err


def test_bundled_example_scores_and_gates_without_audio_or_model(tmp_path, capsys):
    """The README's quick try: the example manifest + bundled hypotheses (scoring needs no audio)."""
    from pathlib import Path

    example = Path(__file__).resolve().parents[2] / "examples" / "clinical"
    out = tmp_path / "c1"
    assert (
        main(
            [
                "score",
                str(example / "manifest.jsonl"),
                "--hyps",
                str(example / "baseline_hyps.jsonl"),
                "--out",
                str(out),
                "--cycle",
                "1",
            ]
        )
        == 0
    )
    assert main(["gate", str(out / "metrics.json")]) == 0
    gate = json.loads((out / "gate.json").read_text())
    assert gate["rows"] == 120 and gate["outcome"] == "FINETUNE" and gate["priority_ker"] > 0.3


def test_config_is_accepted_before_and_after_the_verb(clinical_manifest, tmp_path, capsys):
    cfg = tmp_path / "fw.toml"
    cfg.write_text("[gate]\nmin_priority_rows = 3\n")
    for argv in (
        ["--config", str(cfg), "split", str(clinical_manifest), "--out", str(tmp_path / "a")],
        ["split", str(clinical_manifest), "--out", str(tmp_path / "b"), "--config", str(cfg)],
    ):
        assert main(argv) == 0, capsys.readouterr().err  # without the file: 3 drug rows < 5 refuses
    assert main(["split", str(clinical_manifest), "--out", str(tmp_path / "c")]) == 2
    cfg.write_text("[gate]\nmin_priority_rows = 3\nmin_prioriy_rows = 3\n")
    assert main(["split", str(clinical_manifest), "--out", str(tmp_path / "d"), "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert f"invalid configuration in {cfg}" in err and "line 3: gate.min_prioriy_rows: unknown key" in err


def test_an_unexpected_exception_is_one_error_line_and_exit_1(monkeypatch, capsys):
    from asr_flywheel.plugins.manager import Plugins

    def broken(self):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(Plugins, "base_models", broken)  # stands in for any bug or broken environment
    monkeypatch.delenv("FLYWHEEL_DEBUG", raising=False)
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert err.splitlines() == ["error: RuntimeError: disk on fire", "rerun with FLYWHEEL_DEBUG=1 for the traceback"]
    monkeypatch.setenv("FLYWHEEL_DEBUG", "1")
    assert main(["models"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: disk on fire" in err


def test_error_messages_never_print_a_secret(monkeypatch, capsys):
    from asr_flywheel.plugins.manager import Plugins

    monkeypatch.setenv("HF_TOKEN", "hf_SECRETvalue123")

    def leaky(self):
        raise RuntimeError("401 for https://hub.example?token=hf_SECRETvalue123")

    monkeypatch.setattr(Plugins, "base_models", leaky)
    for debug in ("0", "1"):
        monkeypatch.setenv("FLYWHEEL_DEBUG", debug)
        assert main(["models"]) == 1
        err = capsys.readouterr().err
        assert "token=***" in err and "hf_SECRETvalue123" not in err


def test_a_malformed_set_is_exit_2_before_anything_runs(tmp_path, capsys):
    assert main(["train", str(tmp_path), "--base", "nvidia/parakeet-ctc-0.6b", "--out", "o", "--set", "epochs"]) == 2
    assert "--set expects key=value, got 'epochs'" in capsys.readouterr().err


def test_long_problem_lists_are_capped_with_the_full_list_in_a_file_and_json(tmp_path, capsys):
    row = {"text": "a", "term": "a", "entity_category": "drug"}
    rows = [{"audio_filepath": f"missing{i}.wav", **row} for i in range(60)]
    bad = write_manifest(tmp_path / "bad.jsonl", rows)
    assert main(["validate", str(bad), "--json"]) == 2
    out = capsys.readouterr()
    assert len(json.loads(out.out)) == 60
    lines = out.err.splitlines()
    problem_lines = [line for line in lines if line.startswith("  line ")]
    assert len(problem_lines) == 50
    (more,) = [line for line in lines if "... and 10 more" in line]
    full = Path(more.split("full list in ")[1].split()[0])
    assert len(full.read_text().splitlines()) == 60
    full.unlink()


@pytest.mark.parametrize("verb", ["cycle", "demo"])
def test_an_unwritable_workspace_exits_2_before_any_prefect_server_or_synthesis(verb, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file where the workspace's parent would have to be")
    argv = [verb, "m.jsonl"] if verb == "cycle" else [verb]
    assert main([*argv, "--workspace", str(blocker / "ws")]) == 2
    assert f"--workspace {blocker / 'ws'} is not writable" in capsys.readouterr().err
