"""Phrase boosting through NeMo's own decoding config, on a real tiny NeMo model: the committed demo base (a
6 MB FastConformer-CTC trained here on general English) and real espeak-ng clips of drug names it never trained on.
The CLI is driven as a user drives it (`flywheel eval --boost`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main
from helpers import DEMO_BASE, build_new_terms


@pytest.fixture(scope="module")
def unseen_terms(tmp_path_factory) -> Path:
    return build_new_terms(tmp_path_factory.mktemp("boost") / "manifest.jsonl", "en-us,en-gb", 2)


def evaluate(manifest: Path, out: Path, *extra: str) -> dict:
    assert main(["eval", str(manifest), "--model", str(DEMO_BASE), "--out", str(out), *extra]) == 0
    return json.loads((out / "metrics.json").read_text())


def test_boosting_the_manifest_terms_changes_hypotheses_toward_them_and_is_on_record(unseen_terms, tmp_path):
    plain = evaluate(unseen_terms, tmp_path / "plain")
    boosted = evaluate(unseen_terms, tmp_path / "boosted", "--boost", "manifest", "--boost-alpha", "3")
    assert "boost" not in plain and plain["ker"] == 1.0  # the base never heard these words
    assert boosted["ker"] < plain["ker"]
    rows = [json.loads(line) for line in (tmp_path / "boosted" / "per_sample.jsonl").read_text().splitlines()]
    assert sum(r["term"].lower() in r["hyp"].lower() for r in rows) > 0
    assert boosted["boost"]["count"] == 8 and boosted["boost"]["weights"]["alpha"] == 3.0
    board = (tmp_path / "boosted" / "leaderboard_cycle0.md").read_text()
    assert f"hash {boosted['boost']['hash']}" in board and "alpha 3" in board


def test_a_phrase_file_boosts_only_its_phrases_and_alpha_zero_is_plain_decoding(unseen_terms, tmp_path):
    phrases = tmp_path / "phrases.txt"
    phrases.write_text("# one drug\nheparin\n")
    one = evaluate(unseen_terms, tmp_path / "one", "--boost", str(phrases), "--boost-alpha", "3")
    assert one["boost"]["count"] == 1 and one["ker_by_term"]["heparin"]["ker"] < 1.0
    off = evaluate(unseen_terms, tmp_path / "off", "--boost", str(phrases), "--boost-alpha", "0")
    evaluate(unseen_terms, tmp_path / "plain")
    hyps = [
        [json.loads(line)["hyp"] for line in (tmp_path / d / "per_sample.jsonl").read_text().splitlines()]
        for d in ("off", "plain")
    ]
    assert hyps[0] == hyps[1] and off["boost"]["hash"] != one["boost"]["hash"]


def test_boosted_decoding_uses_nemo_s_pytorch_path_on_a_cpu():
    from omegaconf import OmegaConf

    from asr_flywheel.backends.nemo.boosting import boosted_decoding
    from asr_flywheel.boost import BoostList
    from asr_flywheel.config import BoostConfig

    cfg = boosted_decoding(
        OmegaConf.create({"strategy": "greedy", "greedy": {}}), BoostList(("a b",), BoostConfig(2.0))
    )
    assert cfg.strategy == "greedy_batch" and cfg.greedy.boosting_tree_alpha == 2.0
    assert list(cfg.greedy.boosting_tree.key_phrases_list) == ["a b"] and cfg.greedy.boosting_tree.use_triton is False


def test_a_transcriber_that_cannot_boost_is_refused_by_name_before_any_work(unseen_terms, tmp_path, capsys):
    out = tmp_path / "refused"
    code = main(
        ["eval", str(unseen_terms), "--model", "cmu/pocketsphinx-en-us", "--out", str(out), "--boost", "manifest"]
    )
    err = capsys.readouterr().err
    assert code == 2 and "transcriber 'pocketsphinx' cannot boost" in err and "Traceback" not in err
    assert not (out / "metrics.json").exists()


@pytest.mark.parametrize(
    "extra, why",
    [
        (["--boost-alpha", "2"], "--boost-alpha needs --boost"),
        (["--boost", "manifest", "--boost-alpha", "-1"], "boost.alpha: must be >= 0"),
        (["--boost", "nowhere.txt"], "boost list not found: nowhere.txt"),
    ],
)
def test_bad_boost_arguments_exit_2_naming_the_field(unseen_terms, tmp_path, capsys, extra, why):
    code = main(["eval", str(unseen_terms), "--model", str(DEMO_BASE), "--out", str(tmp_path / "o"), *extra])
    assert code == 2 and why in capsys.readouterr().err
