import json

import pytest

from asr_flywheel.config import SplitConfig
from asr_flywheel.errors import InputError
from asr_flywheel.manifest import Manifest
from asr_flywheel.split import split_manifest, write_split


def manifest(counts: dict[str, int], tmp_path, order=None) -> Manifest:
    rows = [
        {"audio_filepath": f"audio/{c}{i}.wav", "text": f"{c} row {i}", "term": c, "entity_category": c}
        for c, k in counts.items()
        for i in range(k)
    ]
    if order:
        rows = order(rows)
    return Manifest(
        path=tmp_path / "m.jsonl",
        rows=rows,
        lines=list(range(1, len(rows) + 1)),
        audio_paths=[str(tmp_path / r["audio_filepath"]) for r in rows],
    )


def test_row_disjoint_and_stratified_by_category(tmp_path):
    r = split_manifest(manifest({"drug": 20, "procedure": 10, "anatomy": 7}, tmp_path), SplitConfig(), ("drug",))
    assert not set(r.train) & set(r.validation)
    assert len(r.train) + len(r.validation) == 37
    assert r.counts == {
        "anatomy": {"train": 6, "validation": 1},
        "drug": {"train": 16, "validation": 4},
        "procedure": {"train": 8, "validation": 2},
    }


def test_singleton_category_goes_to_train_with_warning(tmp_path):
    m = manifest({"drug": 10, "role": 1}, tmp_path)
    r = split_manifest(m, SplitConfig(), ("drug",))
    role_idx = next(i for i, row in enumerate(m.rows) if row["entity_category"] == "role")
    assert role_idx in r.train and r.counts["role"] == {"train": 1, "validation": 0}
    assert any("single row" in w for w in r.warnings)


def test_priority_category_with_fewer_than_5_rows_aborts_with_grow_manifest(tmp_path):
    with pytest.raises(InputError, match="GROW_MANIFEST") as exc:
        split_manifest(manifest({"drug": 4, "lab": 30}, tmp_path), SplitConfig(), ("drug",))
    assert "'drug' has 4 row(s)" in exc.value.render()


def test_same_input_and_seed_give_byte_identical_files(tmp_path):
    m = manifest({"drug": 23, "lab": 9}, tmp_path)
    outs = []
    for d in ("a", "b"):
        r = split_manifest(m, SplitConfig(seed=42), ("drug",))
        outs.append(write_split(m, r, SplitConfig(seed=42), tmp_path / d))
    for k in outs[0]:
        assert outs[0][k].read_bytes() == outs[1][k].read_bytes()
    val = [json.loads(x) for x in outs[0]["validation"].read_text().splitlines()]
    assert all(v["audio_filepath"].startswith(str(tmp_path)) for v in val)  # absolute paths for NeMo
    assert outs[0]["validation"].name == "validation.jsonl"  # never manifest.json*


def test_split_is_independent_of_row_order_and_changes_with_seed(tmp_path):
    a = manifest({"drug": 30}, tmp_path)
    b = manifest({"drug": 30}, tmp_path, order=lambda rows: rows[::-1])

    def val(m, seed):
        return {m.rows[i]["audio_filepath"] for i in split_manifest(m, SplitConfig(seed=seed), ("drug",)).validation}

    assert val(a, 42) == val(b, 42)
    assert val(a, 42) != val(a, 7)


def test_growing_the_manifest_keeps_most_validation_rows_held_out(tmp_path):
    small, big = manifest({"drug": 50}, tmp_path), manifest({"drug": 60}, tmp_path)
    v = lambda m: {m.rows[i]["audio_filepath"] for i in split_manifest(m, SplitConfig(), ("drug",)).validation}  # noqa: E731
    assert len(v(small) & v(big)) >= 8  # of 10; a shuffle-based split would keep ~2


def termed(terms_rows: dict[str, int], tmp_path) -> Manifest:
    rows = [
        {"audio_filepath": f"audio/{t}{i}.wav", "text": f"give {t} now", "term": t, "entity_category": "drug"}
        for t, k in terms_rows.items()
        for i in range(k)
    ]
    return Manifest(tmp_path / "m.jsonl", rows, list(range(1, len(rows) + 1)), [r["audio_filepath"] for r in rows])


def test_holdout_terms_sends_every_row_of_whole_terms_to_validation_deterministically(tmp_path):
    m = termed({f"term{k}": 4 for k in range(6)}, tmp_path)
    r = split_manifest(m, SplitConfig(holdout_terms=2), ("drug",))
    assert len(r.heldout_terms) == 2 and set(r.heldout_terms) <= set(r.unseen_terms)
    terms = [row["term"] for row in m.rows]
    assert not {terms[i] for i in r.train} & set(r.heldout_terms)
    assert sum(terms[i] in r.heldout_terms for i in r.validation) == 8
    assert r == split_manifest(m, SplitConfig(holdout_terms=2), ("drug",))  # same seed, same split
    others = {split_manifest(m, SplitConfig(holdout_terms=2, seed=s), ("drug",)).heldout_terms for s in range(6)}
    assert len(others) > 1  # the seed chooses


def test_holding_out_every_term_is_refused(tmp_path):
    with pytest.raises(InputError, match="at least one must remain"):
        split_manifest(termed({"a": 5, "b": 5}, tmp_path), SplitConfig(holdout_terms=2), ("drug",))


def test_split_json_records_seen_terms_and_read_split_returns_them(tmp_path):
    from asr_flywheel.split import read_split

    m = termed({"cefazolin": 5, "Nystatin": 5, "heparin": 5}, tmp_path)
    m.audio_paths = [str(tmp_path / a) for a in m.audio_paths]
    r = split_manifest(m, SplitConfig(holdout_terms=1), ("drug",))
    write_split(m, r, SplitConfig(holdout_terms=1), tmp_path / "split")
    info = read_split(tmp_path / "split")
    assert info.seen_terms == set(r.seen_terms) and len(info.seen_terms) == 2
    assert "nystatin" in r.seen_terms + r.unseen_terms  # normalised
    assert info.train_audio == {m.audio_paths[i] for i in r.train}


def terms_manifest(per_term: dict[str, int], tmp_path) -> Manifest:
    """Every term in one 'drug' category, so only the per-term guarantee can spread validation over terms."""
    rows = [
        {"audio_filepath": f"audio/{t}{i}.wav", "text": f"take {t} {i}", "term": t, "entity_category": "drug"}
        for t, k in per_term.items()
        for i in range(k)
    ]
    return Manifest(
        tmp_path / "m.jsonl", rows, list(range(1, len(rows) + 1)), [str(tmp_path / r["audio_filepath"]) for r in rows]
    )


def _val_per_term(m: Manifest, r) -> dict[str, int]:
    from collections import Counter

    return Counter(m.rows[i]["term"] for i in r.validation)


def test_min_heldout_per_term_puts_that_many_rows_of_every_term_in_validation(tmp_path):
    m = terms_manifest({f"term{k}": 8 for k in range(12)}, tmp_path)
    plain = split_manifest(m, SplitConfig(val_fraction=0.25), ("drug",))
    assert min(_val_per_term(m, plain).get(f"term{k}", 0) for k in range(12)) < 2  # category-only can starve a term
    r = split_manifest(m, SplitConfig(val_fraction=0.25, min_heldout_per_term=2), ("drug",))
    assert _val_per_term(m, r) == {f"term{k}": 2 for k in range(12)}
    assert not set(r.train) & set(r.validation) and len(r.validation) == round(0.25 * 96) and r.warnings == []


def test_min_heldout_per_term_keeps_one_row_of_a_small_term_in_training_and_warns_when_over_the_fraction(tmp_path):
    m = terms_manifest({"alpha": 2, "beta": 1, "gamma": 3}, tmp_path)
    r = split_manifest(m, SplitConfig(val_fraction=0.2, min_heldout_per_term=2), ("drug",))
    assert _val_per_term(m, r) == {"alpha": 1, "gamma": 2}
    assert set(r.seen_terms) == {"alpha", "beta", "gamma"}
    assert any("more than val_fraction" in w for w in r.warnings)


def test_min_heldout_per_term_zero_is_the_category_only_split(tmp_path):
    m = terms_manifest({f"t{k}": 5 for k in range(7)}, tmp_path)
    assert split_manifest(m, SplitConfig(min_heldout_per_term=0), ("drug",)) == split_manifest(
        m, SplitConfig(), ("drug",)
    )


def test_negative_min_heldout_per_term_is_refused(tmp_path):
    with pytest.raises(InputError, match="min_heldout_per_term must be >= 0"):
        split_manifest(terms_manifest({"a": 6}, tmp_path), SplitConfig(min_heldout_per_term=-1), ("drug",))


def test_heldout_size_rule_names_terms_with_a_single_heldout_row():
    from asr_flywheel.split import heldout_size

    terms = ["a", "a", "b", "b", "c", None]
    cats = ["drug"] * 5 + ["anatomy"]
    size = heldout_size(terms, cats, ("drug",))
    assert (size.priority_rows, size.min_per_term, size.thin_terms) == (5, 1, ("c",))
    assert not size.met and "NOT met" in size.sentence() and "c" in size.sentence()
    many = heldout_size([f"t{i // 2}" for i in range(16)], ["drug"] * 16, ("drug",))
    assert many.met and many.min_per_term == 2
    assert not heldout_size([f"t{i // 2}" for i in range(14)], ["drug"] * 14, ("drug",)).met  # 14 < 16 priority


def voiced(tmp_path, voices=("flite:rms", "flite:awb", "festival:kal", "festival:slt_hts"), per=6) -> Manifest:
    rows = [
        {"audio_filepath": f"audio/{t}-{v}-{i}.wav", "text": f"{t} {i}", "term": t, "entity_category": "drug",
         "voice_id": v}
        for t in ("heparin", "cefazolin", "warfarin")
        for v in voices
        for i in range(per)
    ]  # fmt: skip
    return Manifest(tmp_path / "m.jsonl", rows, list(range(1, len(rows) + 1)), [r["audio_filepath"] for r in rows])


def test_holdout_voices_by_name_keeps_every_row_of_them_out_of_training(tmp_path):
    m = voiced(tmp_path)
    r = split_manifest(m, SplitConfig(val_fraction=0.2, holdout_voices=("festival:slt_hts",)), ("drug",))
    train_voices = {m.rows[i]["voice_id"] for i in r.train}
    assert "festival:slt_hts" not in train_voices and len(train_voices) == 3
    assert all(i in r.validation for i, row in enumerate(m.rows) if row["voice_id"] == "festival:slt_hts")
    assert r.heldout_voices == r.unseen_voices == ("festival:slt_hts",)
    assert set(r.seen_voices) == train_voices


def test_holdout_voices_by_count_is_drawn_by_the_seed_and_stable(tmp_path):
    m = voiced(tmp_path)
    a = split_manifest(m, SplitConfig(holdout_voices=2, seed=3), ("drug",))
    b = split_manifest(m, SplitConfig(holdout_voices=2, seed=3), ("drug",))
    assert a.heldout_voices == b.heldout_voices and len(a.heldout_voices) == 2
    assert not {m.rows[i]["voice_id"] for i in a.train} & set(a.heldout_voices)


def test_holdout_voices_that_do_not_exist_or_leave_none_to_train_are_refused(tmp_path):
    m = voiced(tmp_path, voices=("flite:rms", "flite:awb"))
    with pytest.raises(InputError) as err:
        split_manifest(m, SplitConfig(holdout_voices=("flite:slt", "espeak:en-us")), ("drug",))
    assert sorted(p.reason.split(" ")[0] for p in err.value.problems) == ["'espeak:en-us'", "'flite:slt'"]
    assert all("voices: flite:awb, flite:rms" in p.reason for p in err.value.problems)
    with pytest.raises(InputError, match="cannot hold out 2 voice"):
        split_manifest(m, SplitConfig(holdout_voices=2), ("drug",))
    with pytest.raises(InputError, match="holds out every voice"):
        split_manifest(m, SplitConfig(holdout_voices=("flite:rms", "flite:awb")), ("drug",))


def test_written_split_records_the_voices_for_the_scorer(tmp_path):
    from asr_flywheel.split import read_split

    m = voiced(tmp_path)
    cfg = SplitConfig(holdout_voices=("festival:kal",))
    write_split(m, split_manifest(m, cfg, ("drug",)), cfg, tmp_path / "split", durations={})
    info = read_split(tmp_path / "split")
    assert info.seen_voices == frozenset({"flite:rms", "flite:awb", "festival:slt_hts"})
