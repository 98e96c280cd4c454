import pytest

from asr_flywheel.config import DecisionConfig, StatsConfig
from asr_flywheel.decision import Decision, decide, render_decision
from asr_flywheel.errors import InputError

STATS = StatsConfig(bootstrap_resamples=1000)


def samples(kers: list[int], cat="drug", prefix="a"):
    return [{"audio_filepath": f"{prefix}{i}", "ker": k, "entity_category": cat} for i, k in enumerate(kers)]


DEFAULT = DecisionConfig()


def run(before_misses, after_misses, n=100, history=None, cfg=DEFAULT, **kw):
    b = samples([1] * before_misses + [0] * (n - before_misses))
    a = samples([1] * after_misses + [0] * (n - after_misses))
    return decide(b, a, cfg, STATS, targets=("drug",), history=history, cycle=5, manifest_family="fam", **kw)[0]


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        (50, 40, Decision.KEEP),  # -20 % exactly
        (50, 10, Decision.KEEP),
        (50, 41, Decision.GROW_MANIFEST),  # -18 %
        (50, 47, Decision.GROW_MANIFEST),  # -6 %
        (50, 48, Decision.NO_CHANGE),  # -4 %
        (40, 38, Decision.NO_CHANGE),  # -5 % exactly: not "more than 5 %"
        (50, 52, Decision.NO_CHANGE),  # +4 %
        (40, 42, Decision.OVERFIT),  # +5 % exactly
        (50, 70, Decision.OVERFIT),
    ],
)
def test_decision_table_rows(before, after, expected):
    assert run(before, after).decision is expected


def test_zero_base_ker_is_no_change_or_overfit():
    assert run(0, 0).decision is Decision.NO_CHANGE
    assert run(0, 3).decision is Decision.OVERFIT


def test_two_consecutive_small_drops_is_plateau():
    history = [{"manifest_family": "fam", "cycle": 4, "relative_change": -0.02, "decision": "NO_CHANGE"}]
    r = run(50, 49, history=history)
    assert r.decision is Decision.PLATEAU and "Two consecutive cycles" in r.reason
    # a previous big drop, another family, or a later cycle does not count
    assert run(50, 49, history=[{**history[0], "relative_change": -0.5}]).decision is Decision.NO_CHANGE
    assert run(50, 49, history=[{**history[0], "manifest_family": "x"}]).decision is Decision.NO_CHANGE
    assert run(50, 49, history=[{**history[0], "cycle": 6}]).decision is Decision.NO_CHANGE


def test_insufficient_evidence_only_when_significance_requested():
    r = run(4, 2, n=8)  # -50 % on 8 rows: KEEP on the point estimate, CI includes zero
    assert r.decision is Decision.KEEP and not r.significant
    assert any("too few" in n for n in r.notes)
    r2 = run(4, 2, n=8, require_significance=True)
    assert r2.decision is Decision.INSUFFICIENT_EVIDENCE and "includes zero" in r2.reason
    assert run(50, 10, require_significance=True).decision is Decision.KEEP  # significant drop stays KEEP


def test_no_observed_change_is_not_blamed_on_too_few_rows():
    r = run(10, 10, n=20)
    assert r.decision is Decision.NO_CHANGE and not any("too few" in n for n in r.notes)


def test_only_rows_scored_in_both_cycles_count():
    before = samples([1] * 10 + [0] * 10)  # 20 rows, KER 0.5
    after = samples([0] * 5, prefix="a")  # 5 held-out rows a0..a4, all were misses before
    r, cmp = decide(before, after, DecisionConfig(), STATS, targets=("drug",))
    assert r.n_targeted == 5 and r.ker_before == 1.0 and r.ker_after == 0.0
    assert cmp.only_before == 15


def test_untargeted_categories_do_not_decide_but_are_reported():
    b = samples([1] * 10) + samples([0] * 10, cat="anatomy", prefix="z")
    a = samples([0] * 10) + samples([1] * 10, cat="anatomy", prefix="z")
    r, _ = decide(b, a, DecisionConfig(), STATS, targets=("drug",))
    assert r.decision is Decision.KEEP
    assert {c["category"] for c in r.per_category} == {"drug", "anatomy"}


def test_saturated_categories_are_called_out_on_no_change():
    b = samples([1] * 10 + [0] * 10) + samples([0] * 10, cat="anatomy", prefix="z")
    r, _ = decide(b, b, DecisionConfig(), STATS, targets=("drug",))
    assert r.decision is Decision.NO_CHANGE
    assert any("anatomy" in n and "not failures" in n for n in r.notes)
    assert "NO_CHANGE" in render_decision(r)


def test_no_targeted_rows_is_an_input_error():
    with pytest.raises(InputError, match="targeted categories"):
        decide(samples([1, 0], cat="lab"), samples([1, 0], cat="lab"), DecisionConfig(), STATS, targets=("drug",))
