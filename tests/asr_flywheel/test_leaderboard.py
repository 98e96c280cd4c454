import re

from asr_flywheel.compare import compare_samples
from asr_flywheel.config import StatsConfig
from asr_flywheel.leaderboard import pronunciation_gap_sentence, render_comparison, render_leaderboard


def metrics(**over):
    m = {
        "n": 120,
        "wer": 0.2,
        "cer": 0.1,
        "ker": 0.4,
        "ser": 0.5,
        "wer_corpus": 0.21,
        "cer_corpus": 0.11,
        "ker_n": 100,
        "ker_ci_low": 0.3,
        "ker_ci_high": 0.5,
        "model": "base",
        "cycle": 2,
        "manifest": "m.jsonl",
        "manifest_version": "abc",
        "scope": "all rows",
        "ker_by_entity_category": {"drug": {"ker": 0.5, "n": 40, "ci_low": 0.35, "ci_high": 0.65}},
        "ker_by_ipa_source": {
            "g2p": {"ker": 0.6, "n": 30, "ci_low": 0.4, "ci_high": 0.8},
            "override": {"ker": 0.05, "n": 20, "ci_low": 0.0, "ci_high": 0.15},
        },
        "ker_by_noise_level": {"clean": {"ker": 0.4, "n": 100, "ci_low": 0.3, "ci_high": 0.5}},
        "ker_by_term": {"cefazolin": {"ker": 0.9, "n": 10, "ci_low": 0.7, "ci_high": 1.0, "entity_category": "drug"}},
    }
    m.update(over)
    return m


def test_five_sections_in_spec_order():
    md = render_leaderboard(metrics())
    heads = re.findall(r"^## (\d)\. (.+)$", md, re.M)
    assert [h[0] for h in heads] == ["1", "2", "3", "4", "5"]
    assert [h[1].split()[0] for h in heads] == ["Headline", "KER", "KER", "KER", "Per-term"]
    assert "entity category" in heads[1][1] and "pronunciation" in heads[2][1] and "noise" in heads[3][1]


def test_every_rate_row_shows_its_n():
    md = render_leaderboard(metrics())
    for line in md.splitlines():
        if line.startswith("| ") and not line.startswith("| metric") and re.search(r"\d\.\d{3}", line):
            assert re.search(r"\| \d+ \|$", line), line


def test_pronunciation_delta_is_stated_in_words():
    s = pronunciation_gap_sentence(metrics())
    assert "g2p is 0.550 worse than the verified pronunciations" in s
    assert "pronunciation problem" in s
    assert "cannot be computed" in pronunciation_gap_sentence(metrics(ker_by_ipa_source={}))


def test_comparison_table_has_paired_ci():
    before = [{"audio_filepath": f"a{i}", "ker": 1, "entity_category": "drug"} for i in range(20)]
    after = [{"audio_filepath": f"a{i}", "ker": int(i < 4), "entity_category": "drug"} for i in range(20)]
    md = render_comparison(compare_samples(before, after, StatsConfig(bootstrap_resamples=500)))
    assert "| drug | 20 | 1.000 | 0.200 | -0.800 * | -80.0% |" in md
    assert "95% CI of Δ" in md


def test_control_set_section_shows_wer_before_after_and_the_verdict():
    from asr_flywheel.control import ControlCheck

    md = render_leaderboard(metrics(), control=ControlCheck(0.2, 0.3, 40, 0.1))
    assert "## Control set (general English)" in md
    assert "| WER (mean of rows) | 0.200 | 0.300 | +50.0% | +10% | 40 |" in md
    assert "REGRESSED" in md
    assert "REGRESSED" not in render_leaderboard(metrics(), control=ControlCheck(0.2, 0.21, 40, 0.1))


def test_per_term_rows_show_what_the_model_wrote():
    term = {
        "ker": 0.9,
        "n": 10,
        "ci_low": 0.7,
        "ci_high": 1.0,
        "entity_category": "drug",
        "misrecognitions": {
            "top": [{"text": "cefa zolin", "count": 3}, {"text": "", "count": 1}],
            "aligned_rows": 4,
            "missed_rows": 9,
        },
    }
    md = render_leaderboard(metrics(ker_by_term={"cefazolin": term}))
    assert '| cefazolin | drug | "cefa zolin" (3×), (nothing) (1×) — first 4 of 9 misses | 0.900 |' in md
