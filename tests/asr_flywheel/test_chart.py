import pytest

from asr_flywheel.chart import CategoryKer, CycleKer, cycle_ker_from_metrics, write_ker_chart
from asr_flywheel.metrics_record import Metrics


def test_chart_of_ker_per_category_across_cycles_is_a_png(tmp_path):
    metrics = Metrics.from_dict(
        {
            "n": 20,
            "ker_by_entity_category": {"drug": {"ker": 0.6, "n": 20, "ci_low": 0.4, "ci_high": 0.8}},
            "ker_by_ipa_source": {},
        }
    )
    cycles = [
        cycle_ker_from_metrics("cycle 1 baseline", metrics),
        CycleKer("cycle 1 held-out", {"drug": CategoryKer(0.2, 0.05, 0.4, 8), "lab": CategoryKer(0.5, 0.0, 1.0, 2)}),
    ]
    out = write_ker_chart(cycles, tmp_path / "charts" / "ker_by_category.png")
    data = out.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert [p.name for p in out.parent.iterdir()] == ["ker_by_category.png"]  # no temp file left behind


def test_chart_needs_at_least_one_cycle(tmp_path):
    with pytest.raises(ValueError, match="at least one cycle"):
        write_ker_chart([], tmp_path / "x.png")
