"""`flywheel demo` end to end: the committed general-English base, real espeak-ng manifests with real noise, the real
NeMo trainer, a real Prefect server, a real tritonserver and served parity. Nothing is mocked.

Smaller configuration than `make demo` (stated here, so the suite stays within budget): 8 rows per term instead of
12, 240 replay rows instead of 400, the demo config's own fine-tuning hyperparameters in cycle 1, and 2 epochs
instead of 8 in cycle 2 (the test asks of cycle 2 only that it starts from cycle 1's champion and decides).
The assertions are the issue's: gate FINETUNE; held-out priority KER drops; KEEP; the control guard was evaluated;
a served transcript equals the offline one; cycle 2 starts from cycle 1's champion.
"""

from __future__ import annotations

import dataclasses

import pytest

from asr_flywheel import io as fio
from asr_flywheel.cycle import Workspace
from asr_flywheel.flows.demo import COMMITTED_BASE, FULL, demo_summary, run_demo

SMALL = dataclasses.replace(
    FULL, rows_per_term=8, replay_rows=240, keep_server=False, later_hyperparameters={"epochs": 2}
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo(prefect_server, tmp_path_factory):
    assert (COMMITTED_BASE / "base.nemo").is_file(), "the committed base model (examples/demo/base) is missing"
    result = run_demo(tmp_path_factory.mktemp("demo-ws"), profile=SMALL)
    return result, demo_summary(result)


def test_cycle_one_gates_finetune_and_keeps_a_model_whose_priority_ker_dropped(demo):
    _, summary = demo
    first = summary["cycles"][0]
    assert first["gate_json"]["outcome"] == "FINETUNE"
    decision = first["decision_json"]
    drug = next(r for r in decision["per_category"] if r["category"] == "drug")
    assert drug["n"] >= 1 and drug["ker_after"] < drug["ker_before"]
    assert decision["decision"] == "KEEP" and first["outcome"] == "KEEP"


def test_cycle_one_evaluated_the_control_guard(demo):
    _, summary = demo
    control = summary["cycles"][0]["decision_json"]["control"]
    assert control is not None and control["wer_before"] is not None and control["wer_after"] is not None


def test_served_transcripts_equal_the_offline_ones(demo):
    result, summary = demo
    kept = next(c for c in summary["cycles"] if c["outcome"] == "KEEP")
    assert kept["deployed"]
    cycle_dir = Workspace(result.workspace).cycle(kept["cycle"]).path
    parity = fio.read_json(next(cycle_dir.rglob("parity.json")))
    assert parity["ok"] and parity["rows"] > 0 and parity["mismatches"] == []
    offline = {r["audio_filepath"]: r["hyp"] for r in fio.read_jsonl(cycle_dir / "after" / "offline_hyps.jsonl")}
    served_file = next(p for p in parity["files"] if p.endswith("offline_hyps.jsonl"))
    served = {r["audio_filepath"]: r["hyp"] for r in fio.read_jsonl(served_file)}
    assert served and all(offline[a] == h for a, h in served.items())


def test_cycle_two_starts_from_cycle_ones_champion(demo):
    result, summary = demo
    first, second = summary["cycles"]
    assert second["cycle"] == first["cycle"] + 1
    start = second["record"]["start"]
    assert start["parent"] == first["model_id"] and start["model"] != str(result.base_model)
    assert second["outcome"]  # a decision (or a gate outcome) was reached
