"""The end of a cycle: a registered candidate → [human approval] → [deploy] → promote to champion.

The champion changes last. With `[cycle] require_approval` a KEEP candidate waits (paused run, typed form in the
UI) and becomes champion only once approved and, when deploying is on, deployed; a rejection is recorded in the
registry with who rejected it and why, the champion stays as it was, and the cycle's outcome is REJECTED.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import get_run_logger

from asr_flywheel.flows import steps, tasks
from asr_flywheel.flows.records import (
    CycleOutcome,
    DecisionRecord,
    DeployRecord,
    Promotion,
    Registration,
    Review,
    TrainRecord,
)
from asr_flywheel.flows.transcription import OFFLINE_HYPS
from asr_flywheel.registry import promotion_due
from asr_flywheel.split import VALIDATION_FILE

if TYPE_CHECKING:
    from asr_flywheel.flows.cycle import CycleRun

REJECTED = "REJECTED"
DEPLOY_FAILED = "DEPLOY_FAILED"


def settle(run: CycleRun, trained: TrainRecord, decision: DecisionRecord, registered: Registration) -> CycleOutcome:
    n = run.cycle.number
    base = dict(status="complete", cycle=n, decision=decision.decision, model_id=registered.model_id)
    if not decision.keep:
        return CycleOutcome(outcome=decision.decision, **base)
    required = run.cfg.cycle.require_approval
    review = run.step("review", Review, lambda: ask_for_review(run, decision, registered)) if required else None
    if not promotion_due(decision.keep, approval_required=required, approved=review.approved if review else None):
        get_run_logger().warning(
            "cycle %s: candidate %s %s", n, registered.model_id, review.describe() if review else ""
        )
        return CycleOutcome(outcome=REJECTED, review=review.describe() if review else None, **base)
    deployed = None
    review_text = review.describe() if review else None
    if run.deployer:
        deployed = run.step(
            "deploy",
            DeployRecord,
            lambda: tasks.deploy(
                model_path=trained.model,
                deployer=run.deployer,
                cfg=run.cfg,
                out_dir=str(run.cycle.path),
                registry_dir=str(run.ws.registry_dir),
                validation_manifest=str(run.cycle.split_dir / VALIDATION_FILE),
                offline_hyps=str(run.cycle.after_dir / OFFLINE_HYPS),
            ),
        )
        if not deployed.ok:
            get_run_logger().warning("cycle %s: not promoted, %s", n, deployed.reason)
            return CycleOutcome(outcome=DEPLOY_FAILED, review=review_text, deploy=deployed.reason, **base)
    reason = f"KEEP in cycle {n}: {decision.reason}" + (f" ({review.describe()})" if review else "")
    run.step(
        "promote",
        Promotion,
        lambda: tasks.promote(registry_dir=str(run.ws.registry_dir), model_id=registered.model_id, reason=reason),
    )
    return CycleOutcome(
        outcome=decision.decision,
        champion_changed=True,
        deployed=deployed is not None,
        review=review_text,
        deploy=deployed.reason if deployed else None,
        **base,
    )


def ask_for_review(run: CycleRun, decision: DecisionRecord, registered: Registration) -> Review:
    """Pause the run until a human approves or rejects the candidate in the UI (or `resume_flow_run`)."""
    from prefect.flow_runs import pause_flow_run

    get_run_logger().info("cycle %s: KEEP candidate %s waits for approval", run.cycle.number, registered.model_id)
    answer = pause_flow_run(
        wait_for_input=tasks.DeployApproval.with_initial_data(
            description=f"Approve candidate `{registered.model_id}` as the champion?\n\n{decision.markdown}",
            approve=False,
        ),
        timeout=run.cfg.cycle.approval_timeout_s,
    )
    return steps.review(
        registry_dir=run.ws.registry_dir,
        model_id=registered.model_id,
        approved=answer.approve,
        reviewer=answer.reviewer,
        reason=answer.reason,
    )
