"""Running cycles in tests: the flow against the session's real Prefect server, with or without a human answering
the approval form (`resume_flow_run`, what the UI's form does)."""

from __future__ import annotations

import contextvars
import threading
import time
from pathlib import Path

from asr_flywheel.registry import Registry


def force_keep(monkeypatch) -> None:
    """Make the decision table's KER rule say KEEP whatever the numbers: a tiny model's KER moves by noise, and the
    approval, deploy and control-guard tests need a KEEP candidate. Only the KER rule is replaced (the control
    guard, plateau and the rest still run); the table itself is proven in tests/asr_flywheel/test_decision.py and
    a real KEEP end to end by tests/flows/test_demo.py. Thresholds cannot do this: they must be positive."""
    from asr_flywheel import decision, decision_files

    def keep(before, after, rel, cfg):
        return decision.Decision.KEEP, f"targeted KER {before:.3f} → {after:.3f}; KEEP forced by the test"

    monkeypatch.setattr(decision, "classify", keep)
    monkeypatch.setattr(decision_files, "classify", keep)


def run_cycle(manifest: Path, config: Path, **kw):
    from asr_flywheel.flows.cycle import flywheel_cycle

    state = flywheel_cycle(manifest=str(manifest), config_path=str(config), return_state=True, **kw)
    return state.result(), str(state.state_details.flow_run_id)


def artifacts_of(client, run_id: str) -> dict[str, object]:
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    arts = client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
    return {a.key or f"progress-{a.id}": a for a in arts}


def paused_run(client, config: Path, timeout: float = 300.0):
    """The flow run of `config` once it is paused for approval."""
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterState, FlowRunFilterStateName

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(name=FlowRunFilterStateName(any_=["Paused"])))
        )
        mine = [r for r in runs if r.parameters.get("config_path") == str(config)]
        if mine:
            return mine[0]
        time.sleep(0.5)
    raise AssertionError("the cycle never paused for approval")


def cycle_with_review(
    manifest: Path, config: Path, client, *, approve: bool, reviewer: str, reason: str, while_paused=None
):
    """Run a cycle that pauses for approval; check the champion is unchanged while paused; call `while_paused()`
    (e.g. run another cycle) if given; then answer the form."""
    from prefect.flow_runs import resume_flow_run

    box: dict = {}

    def target():
        try:
            box["result"] = run_cycle(manifest, config)
        except BaseException as exc:  # surfaced below
            box["error"] = exc

    # Prefect's settings (the test server's URL) live in context variables, which a new thread does not inherit.
    worker = threading.Thread(target=contextvars.copy_context().run, args=(target,))
    worker.start()
    run = paused_run(client, config)
    workspace = config.parent / "workspace"
    champion_while_paused = Registry(workspace / "registry").champion()
    candidates = Registry(workspace / "registry").models()
    if while_paused is not None:
        while_paused()
    resume_flow_run(run.id, run_input={"approve": approve, "reviewer": reviewer, "reason": reason})
    worker.join(timeout=300)
    if "error" in box:
        raise box["error"]
    return box["result"], champion_while_paused, candidates
