"""The boost lever of a cycle (`[cycle] boost`, docs/design.md#boosting): the starting model decoding with the
manifest's terms boosted, scored on the held-out rows and the control set and put through the decision table
(BOOST when that alone meets KEEP's bar); and, with "always", the fine-tuned candidate scored boosted too.

Orchestration only: the rules are the decision table's (`asr_flywheel.decision`), the list is `asr_flywheel.boost`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from asr_flywheel.boost import BoostList
from asr_flywheel.control import ControlCheck
from asr_flywheel.decision import prefer_boosted
from asr_flywheel.flows import artifacts, tasks
from asr_flywheel.flows.approval import settle
from asr_flywheel.flows.records import CycleOutcome, DecisionRecord, Registration, ScoreRecord, SplitRecord, TrainRecord
from asr_flywheel.split import SplitInfo

if TYPE_CHECKING:
    from asr_flywheel.flows.cycle import CycleRun

SCOPE_BOOSTED = "held-out (validation) rows, starting model with the manifest's terms boosted"
SCOPE_HELDOUT_BOOSTED = "held-out (validation) rows, fine-tuned model with the manifest's terms boosted"


def boosted_control(run: CycleRun, model: str, step: str) -> ControlCheck | None:
    """The control guard for `model` decoding with the boost list, against the starting model's plain control
    score: boosting must not make general English worse (it can write terms where none were said)."""
    ref = run.control_ref
    if ref is None:
        return None
    from asr_flywheel.control import control_check
    from asr_flywheel.metrics_record import load_metrics

    n, boost = run.cycle.number, boost_list(run)
    before = run.step("control_before", ScoreRecord, lambda: run.control_score(run.start.model, ref, n))
    after = run.step(step, ScoreRecord, lambda: run.control_score(model, ref, n + 1, boost))
    return control_check(load_metrics(before.metrics), load_metrics(after.metrics), run.cfg.decision)


def boost_list(run: CycleRun) -> BoostList:
    """The manifest's terms with `[boost]` weights: what the boost lever decodes with. Read once per run (the
    manifest version is fixed for the cycle); every scoring, the registry and the deploy reuse it."""
    from asr_flywheel.boost import boost_list, manifest_terms

    if "boost_list" not in run.seen:
        terms = manifest_terms(run.ref.load(run.cfg).column("term"))
        run.seen["boost_list"] = boost_list(terms, run.cfg.boost, f"manifest {run.ref.path}")
    return run.seen["boost_list"]


def boosting(run: CycleRun, held: SplitRecord, baseline: ScoreRecord, split: SplitInfo) -> DecisionRecord:
    """The cheap lever: the starting model decoding with the manifest's terms boosted, scored on the held-out
    rows and the control set, through the same decision table (KEEP's bar met reads BOOST)."""
    c = run.cycle
    control = boosted_control(run, run.start.model, "control_boosted")
    boosted = run.step(
        "boost_score",
        ScoreRecord,
        lambda: run.score_heldout(
            run.start.model, held, c.boost_dir, SCOPE_BOOSTED, baseline, split, control, boost_list(run)
        ),
    )
    artifacts.publish_score(run.the_label, artifacts.BOOSTED, boosted)
    decision = run.step(
        "boost_decide",
        DecisionRecord,
        lambda: tasks.decide(
            before_metrics=baseline.metrics,
            after_metrics=boosted.metrics,
            out_dir=str(c.boost_dir),
            cfg=run.cfg,
            history=[],  # the plateau rule reads fine-tuning history; a boost list is a lever of its own
            control=control,
            boosting=True,
        ),
    )
    artifacts.publish_decision(run.the_label, decision, "boost-decision")
    run.seen["boost"] = decision
    return decision


def settle_boost(run: CycleRun, decision: DecisionRecord) -> CycleOutcome:
    """BOOST: the starting model's weights with the boost list become the candidate, without training."""
    registered = run.step(
        "register",
        Registration,
        lambda: tasks.register(
            registry_dir=str(run.ws.registry_dir),
            cycle=run.cycle.number,
            trained=None,
            start=run.start,
            manifest=run.ref,
            decision=decision,
            boost=boost_list(run),
        ),
    )
    run.seen["decision"] = decision
    artifacts.publish_decision(run.the_label, decision)
    run.chart()
    if run.turn is not None:
        run.turn.release()
    return settle(run, None, decision, registered, boost_list(run))


def better_boosted(
    run: CycleRun,
    trained: TrainRecord,
    held: SplitRecord,
    baseline: ScoreRecord,
    split: SplitInfo,
    plain: DecisionRecord,
    notes: list[str],
) -> tuple[DecisionRecord, BoostList | None]:
    """`[cycle] boost = "always"`: the candidate scored with the boost list too; the decision names the better
    of fine-tuned and fine-tuned + boosted (the lower targeted held-out KER among those the table keeps)."""
    c = run.cycle
    control = boosted_control(run, trained.model, "control_after_boosted")
    boosted = run.step(
        "rescore_boosted",
        ScoreRecord,
        lambda: run.score_heldout(
            trained.model, held, c.after_boosted_dir, SCOPE_HELDOUT_BOOSTED, baseline, split, control, boost_list(run)
        ),
    )
    artifacts.publish_score(run.the_label, artifacts.HELDOUT_BOOSTED, boosted)
    with_boost = run.step(
        "decide_boosted",
        DecisionRecord,
        lambda: tasks.decide(
            before_metrics=baseline.metrics,
            after_metrics=boosted.metrics,
            out_dir=str(c.after_boosted_dir),
            cfg=run.cfg,
            history=run.ws.history("decision.json", exclude=c),
            control=control,
            notes=[*notes, f"Fine-tuned without the boost list: {plain.summary()}."],
        ),
    )
    if prefer_boosted(plain.keep, plain.ker_after, with_boost.keep, with_boost.ker_after):
        return with_boost, boost_list(run)
    return plain, None
