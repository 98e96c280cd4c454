"""The end of a cycle: a registered candidate → [human approval] → [deploy] → promote to champion.

The champion changes last, and only when every step succeeded. With `[cycle] require_approval` a KEEP candidate
waits (paused run, typed form in the UI) and becomes champion only once approved and, when deploying is on,
deployed with served parity; a rejection is recorded in the registry with who rejected it and why, the champion
stays as it was, and the cycle's outcome is REJECTED. A failed deploy (DEPLOY_FAILED) or parity check
(PARITY_FAILED, the endpoint rolled back) leaves the previous champion serving; a deployer that only writes build
files (Riva) counts as shipped only with `[deploy] promote_unserved` (else NOT_SERVED). While a candidate waits,
the champion is untouched, so the next cycle starts from the approved lineage only; and a candidate whose
starting champion was replaced meanwhile (a later cycle kept its own) is never deployed or promoted: SUPERSEDED
(checked before deploying and again, atomically, when promoting).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prefect import get_run_logger

from asr_flywheel.boost import BoostList
from asr_flywheel.flows import artifacts, steps, tasks
from asr_flywheel.flows.records import (
    DEPLOY_STAGE,
    CycleOutcome,
    DecisionRecord,
    DeployStepRecord,
    Promotion,
    Registration,
    Review,
    TrainRecord,
)
from asr_flywheel.flows.transcription import OFFLINE_HYPS
from asr_flywheel.registry import Registry, champion_unchanged, promotion_due
from asr_flywheel.split import VALIDATION_FILE

if TYPE_CHECKING:
    from asr_flywheel.flows.cycle import CycleRun

REJECTED = "REJECTED"
#: The deploy failed: nothing new serves.
DEPLOY_FAILED = "DEPLOY_FAILED"
#: The new version served other transcripts than offline: rolled back, the previous version serves.
PARITY_FAILED = "PARITY_FAILED"
#: The deployer only wrote build files (Riva) and `[deploy] promote_unserved` is off: nothing serves the candidate.
NOT_SERVED = "NOT_SERVED"
#: The champion changed while the candidate waited (a later cycle kept its own): promoting it would undo that.
SUPERSEDED = "SUPERSEDED"


def settle(
    run: CycleRun,
    trained: TrainRecord | None,
    decision: DecisionRecord,
    registered: Registration,
    boost: BoostList | None = None,
) -> CycleOutcome:
    """KEEP or BOOST → [approval] → [deploy → parity] → promote; the champion changes only when every step
    succeeded. `trained` is None for a BOOST (the starting model's weights with `boost`)."""
    n = run.cycle.number
    base = dict(status="complete", cycle=n, decision=decision.decision, model_id=registered.model_id)
    if not decision.keep:
        return CycleOutcome(outcome=decision.decision, **base)
    required = run.cfg.cycle.require_approval
    review = run.step("review", Review, lambda: ask_for_review(run, decision, registered)) if required else None
    base["review"] = review.describe() if review else None
    if not promotion_due(decision.keep, approval_required=required, approved=review.approved if review else None):
        get_run_logger().warning("cycle %s: candidate %s %s", n, registered.model_id, base["review"] or "")
        return CycleOutcome(outcome=REJECTED, **base)
    registry = Registry(run.ws.registry_dir)
    if not champion_unchanged(registry, run.start.parent):  # never ship an older lineage over a newer champion
        return superseded(run, base, registry)
    deployed = deploy_candidate(run, trained, boost) if run.deployer else None
    if deployed is not None and (not deployed.ok or not (deployed.served or run.cfg.deploy.promote_unserved)):
        return not_promoted(run, base, deployed, registry)
    reason = f"{decision.decision} in cycle {n}: {decision.reason}" + (f" ({base['review']})" if review else "")
    promoted = run.step(
        "promote",
        Promotion,
        lambda: tasks.promote(
            registry_dir=str(run.ws.registry_dir),
            model_id=registered.model_id,
            reason=reason,
            started_from=run.start.parent,
        ),
    )
    deploy_text = deployed.reason if deployed else None
    if not promoted.promoted:
        return superseded(run, {**base, "deploy": deploy_text}, registry)
    return CycleOutcome(
        outcome=decision.decision, champion_changed=True, deployed=deployed is not None, deploy=deploy_text, **base
    )


def deploy_candidate(run: CycleRun, trained: TrainRecord | None, boost: BoostList | None) -> DeployStepRecord:
    """Ship the candidate (a trained model, or for a BOOST the starting model, with its boost list if any) and check
    served parity on the held-out rows against the offline transcripts of that same candidate; the record and
    parity table go on the run page whatever the result."""
    c = run.cycle
    if trained is None:  # BOOST: the starting model's weights, scored boosted in boosted/
        model, offline = run.start.model, c.boost_dir / OFFLINE_HYPS
    else:
        model, offline = trained.model, (c.after_boosted_dir if boost is not None else c.after_dir) / OFFLINE_HYPS
    deployed = run.step(
        "deploy",
        DeployStepRecord,
        lambda: tasks.deploy(
            model_path=model,
            deployer=run.deployer,
            cfg=run.cfg,
            out_dir=str(c.path),
            registry_dir=str(run.ws.registry_dir),
            validation_manifest=str(c.split_dir / VALIDATION_FILE),
            offline_hyps=str(offline),
            boost=boost,
        ),
    )
    artifacts.publish_deploy(run.the_label, deployed)
    run.seen["deploy"] = deployed
    return deployed


def serving_now(registry: Registry) -> str:
    champion = registry.champion()
    return f"the previous champion {champion.model_id} keeps serving" if champion else "no champion was promoted"


def not_promoted(run: CycleRun, base: dict, deployed: DeployStepRecord, registry: Registry) -> CycleOutcome:
    """A failed deploy or parity check, or an unserved build: the champion stays, and the outcome says why."""
    if not deployed.ok:
        outcome = DEPLOY_FAILED if deployed.failed == DEPLOY_STAGE else PARITY_FAILED
        note = serving_now(registry)
    else:
        outcome = NOT_SERVED
        note = f"not served: {run.deployer} wrote build files only ([deploy] promote_unserved is off); " + (
            serving_now(registry)
        )
    get_run_logger().warning("cycle %s: %s, not promoted: %s; %s", run.cycle.number, outcome, deployed.reason, note)
    return CycleOutcome(outcome=outcome, deployed=deployed.served, deploy=deployed.reason, note=note, **base)


def superseded(run: CycleRun, base: dict, registry: Registry) -> CycleOutcome:
    champion = registry.champion()
    note = (
        f"not promoted: the cycle started from {run.start.parent or 'the base model'}, but the champion is now "
        f"{champion.model_id if champion else 'none'}"
    )
    get_run_logger().warning("cycle %s: %s, %s", run.cycle.number, SUPERSEDED, note)
    return CycleOutcome(outcome=SUPERSEDED, note=note, **base)


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
