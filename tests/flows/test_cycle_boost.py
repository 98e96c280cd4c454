"""The boost lever inside the cycle (`[cycle] boost`), against the session's real Prefect server, with the committed
demo base (a real tiny NeMo CTC model) and real espeak-ng rows of terms it never trained on.

BOOST needs the decision table's KEEP bar met by the boosted starting model. That bar is met for real in
tests/backends/nemo/test_nemo_boosting.py's numbers only at weights no one should ship on a tiny model, so the BOOST
path forces the KER rule (`force_keep`, as the control-guard tests do) and checks what the cycle does with it: no
training, the same weights registered and promoted with their boost list. The FINETUNE path needs no forcing: a
boost weight of 0 leaves every transcript unchanged, which the table calls NO_CHANGE, so the cycle trains.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cycle_runs import force_keep, run_cycle

from asr_flywheel.flows.cli import main
from asr_flywheel.registry import Registry
from helpers import DEMO_BASE, build_new_terms, write_tiny_cycle_config

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def new_terms(tmp_path_factory) -> Path:
    return build_new_terms(tmp_path_factory.mktemp("boost-cycle") / "manifest.jsonl", "en-us,en-gb,en-us+f3", 4)


def config(tmp_path: Path, alpha: float) -> Path:
    return write_tiny_cycle_config(
        tmp_path / "flywheel.toml",
        tmp_path / "workspace",
        DEMO_BASE,
        epochs=1,
        cycle={"boost": "first"},
        boost={"alpha": alpha},
        split={"min_heldout_per_term": 1},
    )


def test_boosting_that_meets_keep_s_bar_is_a_boost_without_training(prefect_server, new_terms, tmp_path, monkeypatch):
    force_keep(monkeypatch)
    result, _ = run_cycle(new_terms, config(tmp_path, 3.0))
    assert result.outcome == result.decision == "BOOST" and result.champion_changed
    cycle = tmp_path / "workspace" / "cycles" / "cycle-0001"
    steps = json.loads((cycle / "cycle.json").read_text())["steps"]
    assert {"baseline", "gate", "split", "boost_score", "boost_decide", "register"} <= set(steps)
    assert "train" not in steps and not (cycle / "model").exists()
    boosted = json.loads((cycle / "boosted" / "metrics.json").read_text())
    assert boosted["boost"]["count"] == 8 and boosted["boost"]["weights"]["alpha"] == 3.0
    assert "ker_by_seen" in boosted  # unseen-term KER with boosting is reported apart
    champion = Registry(tmp_path / "workspace" / "registry").champion()
    assert champion is not None and champion.path == str(DEMO_BASE) and champion.decision == "BOOST"
    assert champion.boost["hash"] == boosted["boost"]["hash"] and "heparin" in champion.boost["phrases"]


def test_boosting_that_changes_nothing_is_not_enough_and_the_cycle_fine_tunes(prefect_server, new_terms, tmp_path):
    result, _ = run_cycle(new_terms, config(tmp_path, 0.0))
    cycle = tmp_path / "workspace" / "cycles" / "cycle-0001"
    boost = json.loads((cycle / "boosted" / "decision.json").read_text())
    assert boost["decision"] == "NO_CHANGE" and boost["reason"].startswith("Boosting alone is not enough")
    steps = json.loads((cycle / "cycle.json").read_text())["steps"]
    assert {"train", "rescore", "decide"} <= set(steps)
    decision = json.loads((cycle / "decision.json").read_text())
    assert result.decision == decision["decision"] != "BOOST"
    assert any(
        n.startswith("Boosting alone (starting model + the manifest's terms): NO_CHANGE") for n in decision["notes"]
    )


def test_a_boosting_cycle_refuses_a_model_that_cannot_boost_before_any_work(
    prefect_server, new_terms, tmp_path, capsys
):
    cfg = write_tiny_cycle_config(
        tmp_path / "flywheel.toml", tmp_path / "ws", Path("cmu/pocketsphinx-en-us"), cycle={"boost": "first"}
    )
    code = main(["--config", str(cfg), "cycle", str(new_terms)])
    err = capsys.readouterr().err
    assert code == 2 and "transcriber 'pocketsphinx' cannot boost" in err
    assert not (tmp_path / "ws" / "cycles").exists()
