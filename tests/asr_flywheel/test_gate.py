import pytest

from asr_flywheel import io as fio
from asr_flywheel.config import GateConfig
from asr_flywheel.errors import InputError
from asr_flywheel.gate import GateOutcome, evaluate_gate, history_records, is_first_eval

CFG = GateConfig()


def metrics(n=200, drug=(0.5, 40), g2p=None, good=None, **extra):
    by_src = {}
    if g2p:
        by_src["magpie_g2p"] = {"ker": g2p[0], "n": g2p[1]}
    if good:
        by_src["override"] = {"ker": good[0], "n": good[1]}
    cats = {"drug": {"ker": drug[0], "n": drug[1]}} if drug else {}
    return {
        "n": n,
        "ker_by_entity_category": cats,
        "ker_by_ipa_source": by_src,
        "manifest_family": "fam",
        "manifest_version": "v1",
        "cycle": 1,
        **extra,
    }


def outcome(m, first=True, **kw):
    return evaluate_gate(m, CFG, first_eval=first, **kw).outcome


@pytest.mark.parametrize(("rows", "drug_n"), [(99, 40), (200, 4), (50, 0)])
def test_small_manifest_or_priority_category_grows_manifest(rows, drug_n):
    m = metrics(n=rows, drug=(0.9, drug_n) if drug_n else None)
    r = evaluate_gate(m, CFG, first_eval=False)
    assert r.outcome is GateOutcome.GROW_MANIFEST
    assert "Grow the manifest first" in r.reason


def test_exactly_100_rows_and_5_priority_rows_pass_the_size_rule():
    assert outcome(metrics(n=100, drug=(0.5, 5))) is GateOutcome.FINETUNE


def test_g2p_much_worse_than_good_sources_is_fix_pronunciation_and_wins_over_finetune():
    r = evaluate_gate(metrics(drug=(0.9, 40), g2p=(0.5, 30), good=(0.1, 30)), CFG, first_eval=True)
    assert r.outcome is GateOutcome.FIX_PRONUNCIATION
    assert "0.500" in r.reason and "0.100" in r.reason and "gap of 0.400" in r.reason


@pytest.mark.parametrize(("g2p", "good"), [((0.29, 30), (0.1, 30)), ((0.6, 30), (0.11, 30))])
def test_small_gap_or_bad_good_sources_is_not_a_pronunciation_problem(g2p, good):
    assert outcome(metrics(drug=(0.9, 40), g2p=g2p, good=good)) is GateOutcome.FINETUNE


def test_priority_ker_above_0_3_finetunes():
    r = evaluate_gate(metrics(drug=(0.31, 40)), CFG, first_eval=True)
    assert r.outcome is GateOutcome.FINETUNE and r.proceed and "0.310" in r.reason


@pytest.mark.parametrize("ker", [0.1, 0.2, 0.3])
def test_middle_band_grows_on_first_eval_and_finetunes_later(ker):
    assert outcome(metrics(drug=(ker, 40)), first=True) is GateOutcome.GROW_MANIFEST
    assert outcome(metrics(drug=(ker, 40)), first=False) is GateOutcome.FINETUNE


def test_below_0_1_hardens_eval():
    assert outcome(metrics(drug=(0.09, 40))) is GateOutcome.HARDEN_EVAL


def test_priority_categories_are_pooled_and_configurable():
    m = metrics(drug=(0.5, 10))
    m["ker_by_entity_category"]["procedure"] = {"ker": 0.0, "n": 30}
    r = evaluate_gate(m, CFG, first_eval=False, priority=("drug", "procedure"))
    assert r.priority_ker == pytest.approx(5 / 40) and r.outcome is GateOutcome.FINETUNE


def test_force_requires_reason_and_keeps_the_computed_outcome():
    r = evaluate_gate(metrics(drug=(0.05, 40)), CFG, first_eval=True)
    assert not r.proceed
    with pytest.raises(InputError, match="needs a reason"):
        r.force("  ")
    forced = r.force("clinical lead wants a trial run")
    assert forced.proceed and forced.outcome is GateOutcome.HARDEN_EVAL
    assert forced.to_dict()["force_reason"] == "clinical lead wants a trial run"


def test_first_eval_is_read_from_history(tmp_path):
    m = metrics(drug=(0.2, 40))
    assert is_first_eval(history_records(tmp_path, "gate.json"), m)
    fio.write_json(tmp_path / "c1" / "gate.json", {"manifest_family": "fam", "manifest_version": "v0", "cycle": 0})
    fio.write_json(tmp_path / "c9" / "gate.json", {"manifest_family": "other", "manifest_version": "v0", "cycle": 0})
    hist = history_records(tmp_path, "gate.json")
    assert not is_first_eval(hist, m)
    assert is_first_eval(hist, {**m, "manifest_family": "new"})
