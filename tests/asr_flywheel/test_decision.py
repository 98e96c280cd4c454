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


# --- beyond the methodology: unseen terms, the control guard, metrics files without per-row data ----------


def test_decision_uses_seen_terms_only_and_reports_unseen_terms_apart():
    before = samples([1] * 20)
    after = [{**r, "seen_term": True} for r in samples([0] * 10 + [1] * 5)]  # seen: 10 of 15 fixed
    after += [
        {"audio_filepath": f"a{15 + i}", "ker": 1, "entity_category": "drug", "seen_term": False} for i in range(5)
    ]
    r, _ = decide(before, after, DEFAULT, STATS, targets=("drug",))
    assert r.n_targeted == 15 and r.ker_after == pytest.approx(5 / 15) and r.decision is Decision.KEEP
    assert r.unseen["all"]["n"] == 5 and r.unseen["all"]["ker_after"] == 1.0
    assert any("seen terms only" in n for n in r.notes)
    assert "Unseen terms" in render_decision(r)


def test_control_wer_rising_past_the_guard_is_regressed_whatever_the_ker():
    from asr_flywheel.control import ControlCheck

    ok = ControlCheck(wer_before=0.20, wer_after=0.22, n=50, max_rise=0.10)  # +10 % exactly: within
    bad = ControlCheck(wer_before=0.20, wer_after=0.2201, n=50, max_rise=0.10)
    assert run(50, 10, control=ok).decision is Decision.KEEP
    r = run(50, 10, control=bad)
    assert r.decision is Decision.REGRESSED and not r.keep
    assert "0.200 → 0.220" in r.reason and "KEEP" in r.reason
    assert r.control["regressed"] and "REGRESSED" in render_decision(r)
    assert run(50, 48, control=bad).decision is Decision.REGRESSED  # overrides NO_CHANGE too


def test_control_check_from_metrics_refuses_different_control_sets():
    from asr_flywheel.control import control_check

    c = control_check(
        {"wer": 0.1, "n": 9, "manifest_version": "v1"}, {"wer": 0.3, "n": 9, "manifest_version": "v1"}, DEFAULT
    )
    assert c.regressed and c.rise == pytest.approx(2.0)
    with pytest.raises(InputError, match="different manifests"):
        control_check(
            {"wer": 0.1, "n": 9, "manifest_version": "v1"}, {"wer": 0.1, "n": 9, "manifest_version": "v2"}, DEFAULT
        )


def write_scored(dirpath, kers, cats=None, *, per_row=True, **extra):
    """A scored cycle directory as score_manifest writes it: metrics.json (+ per_sample.jsonl)."""
    import numpy as np

    from asr_flywheel import io as fio
    from asr_flywheel.scoring import ker_breakdown

    cats = cats or ["drug"] * len(kers)
    rows = [
        {"audio_filepath": f"a{i}", "ker": k, "entity_category": c}
        for i, (k, c) in enumerate(zip(kers, cats, strict=True))
    ]
    metrics = {
        "n": len(kers),
        "ker": sum(kers) / len(kers),
        "cycle": 2,
        "manifest_family": "fam",
        "scope": "x",
        "ker_by_entity_category": {
            c: g.to_dict() for c, g in ker_breakdown(cats, np.array(kers, dtype=float), STATS).items()
        },
        "ker_by_ipa_source": {},
        **extra,
    }
    dirpath.mkdir(parents=True)
    if per_row:
        fio.write_jsonl(dirpath / "per_sample.jsonl", rows)
    return fio.write_json(dirpath / "metrics.json", metrics)


def test_decide_files_is_paired_when_per_row_data_exists(tmp_path):
    from asr_flywheel.config import FlywheelConfig
    from asr_flywheel.decision_files import decide_files

    b = write_scored(tmp_path / "b", [1] * 10)
    a = write_scored(tmp_path / "a", [0] * 5 + [1] * 5)
    r = decide_files(b, a, FlywheelConfig())
    assert r.paired and r.ci_low is not None and r.decision is Decision.KEEP


def test_decide_files_without_per_row_data_is_unpaired_on_aggregates_without_ci(tmp_path):
    from asr_flywheel.config import FlywheelConfig
    from asr_flywheel.decision_files import decide_files

    b = write_scored(tmp_path / "b", [1] * 10 + [0] * 10, per_row=False)
    a = write_scored(tmp_path / "a", [1] * 4 + [0] * 6, per_row=True)  # only one side has rows: still unpaired
    r = decide_files(b, a, FlywheelConfig())
    assert not r.paired and r.decision is Decision.KEEP
    assert r.ci_low is None and r.significant is None
    md = render_decision(r)
    assert "unpaired (no per-row data): no confidence interval" in md and "no CI" in md
    assert r.to_dict()["paired"] is False
    with pytest.raises(InputError, match="significance was required"):
        decide_files(b, a, FlywheelConfig(), require_significance=True)


def test_decide_files_refuses_an_after_scored_on_training_rows_unless_allowed(tmp_path):
    from asr_flywheel.config import FlywheelConfig
    from asr_flywheel.decision_files import decide_files

    b = write_scored(tmp_path / "b", [1] * 10)
    a = write_scored(tmp_path / "a", [0] * 10, training_rows=8, scope="all rows")
    with pytest.raises(InputError, match="including 8 training row"):
        decide_files(b, a, FlywheelConfig())
    r = decide_files(b, a, FlywheelConfig(), allow_training_rows=True)
    assert r.includes_training_rows and r.notes[0].startswith("WARNING")
    assert "WARNING: the after numbers include training rows" in render_decision(r)


def test_a_decision_read_back_from_its_json_is_the_same_decision_and_recomputes_the_guard():
    import json

    from asr_flywheel.control import ControlCheck
    from asr_flywheel.decision import DecisionResult

    r = run(50, 10, control=ControlCheck(wer_before=0.20, wer_after=0.2201, n=50, max_rise=0.10))
    data = json.loads(json.dumps(r.to_dict()))
    back = DecisionResult.from_dict(data)
    assert back == r and back.decision is Decision.REGRESSED and back.targets == ("drug",)
    data["control"]["regressed"] = False  # a derived key is never trusted
    assert DecisionResult.from_dict(data).control_check.regressed


def test_decision_reports_unseen_voice_ker_apart():
    before = samples([1] * 20)
    after = [{**r, "seen_term": True, "seen_voice": i < 15} for i, r in enumerate(samples([0] * 15 + [1] * 5))]
    r, _ = decide(before, after, DEFAULT, STATS, targets=("drug",))
    assert r.n_targeted == 20  # unseen voices of seen terms are part of the decision's rows
    assert r.unseen_voices["all"]["n"] == 5 and r.unseen_voices["all"]["ker_after"] == 1.0
    assert any("Unseen voices" in n for n in r.notes)
    assert "Unseen voices (all categories): KER 1.000 → 1.000 (n=5)" in render_decision(r)


def test_the_boost_lever_reads_keep_as_boost_and_anything_else_as_not_enough():
    from dataclasses import replace as with_

    from asr_flywheel.decision import Decision, DecisionResult, as_boosting

    kept = DecisionResult(
        Decision.KEEP, "Targeted KER dropped.", ("drug",), 9, 0.9, 0.3, -0.67, None, None, None, [], 2, "f"
    )
    boosted = as_boosting(kept)
    assert boosted.decision is Decision.BOOST and boosted.keep and boosted.reason.startswith("Boost without training")
    flat = as_boosting(with_(kept, decision=Decision.NO_CHANGE))
    assert flat.decision is Decision.NO_CHANGE and not flat.keep and "not enough (NO_CHANGE)" in flat.reason


@pytest.mark.parametrize(
    "plain_keep, plain_ker, boosted_keep, boosted_ker, expected",
    [
        (True, 0.40, True, 0.30, True),  # both kept: the lower targeted KER wins
        (True, 0.30, True, 0.40, False),
        (True, 0.30, True, 0.30, False),  # a tie keeps the plain model (no list to ship)
        (False, 0.90, True, 0.50, True),  # only the boosted candidate is kept
        (True, 0.30, False, 0.10, False),  # a boosted candidate the table does not keep never ships
    ],
)
def test_always_boost_ships_the_list_only_when_it_is_kept_and_better(
    plain_keep, plain_ker, boosted_keep, boosted_ker, expected
):
    from asr_flywheel.decision import prefer_boosted

    assert prefer_boosted(plain_keep, plain_ker, boosted_keep, boosted_ker) is expected
