"""The end of a cycle as steps: register the candidate, record a human review, deploy, promote; plus what the
re-score needs from the split and the KER chart across cycles."""

from __future__ import annotations

import logging
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostList
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import ManifestRef, StartingPoint, Workspace
from asr_flywheel.flows.records import (
    DEPLOY_STAGE,
    PARITY_STAGE,
    DecisionRecord,
    DeployStepRecord,
    Promotion,
    Registration,
    Review,
    SplitRecord,
    TrainRecord,
)
from asr_flywheel.split import SplitInfo


def register(
    *,
    registry_dir: str | Path,
    cycle: int,
    trained: TrainRecord | None,
    start: StartingPoint,
    manifest: ManifestRef,
    decision: DecisionRecord,
    boost: BoostList | None = None,
) -> Registration:
    """Enter a candidate in the registry, with its lineage and the cycle's decision: a trained model, or (a BOOST,
    `trained` None) the starting model's own weights with the boost list."""
    from asr_flywheel.registry import Registry

    run_info = fio.read_json(trained.run_info) if trained is not None else {}
    reg = Registry(registry_dir)
    rec = reg.register(
        path=trained.model if trained is not None else start.model,
        backend=trained.backend if trained is not None else start.backend or "",
        base_model=start.model,
        parent=start.parent,
        manifest_version=manifest.version,
        manifest_family=manifest.path,
        cycle=cycle,
        hyperparameters=run_info.get("hyperparameters", {}),
        metrics=run_info.get("metrics", {}),
        decision=decision.decision,
        architecture=trained.decoder if trained is not None else None,
        boost=boost.to_dict() if boost is not None else None,
    )
    return Registration(model_id=rec.model_id, registry=str(reg.path), files=[str(reg.path)])


def review(*, registry_dir: str | Path, model_id: str, approved: bool, reviewer: str, reason: str) -> Review:
    """Record a human's approval or rejection of a candidate in the registry."""
    from asr_flywheel.registry import Registry

    reg = Registry(registry_dir)
    reg.review(model_id, approved=approved, reviewer=reviewer, reason=reason)
    return Review(approved=approved, reviewer=reviewer, reason=reason, files=[str(reg.path)])


def deploy(
    *,
    model_path: str,
    deployer: str,
    cfg: FlywheelConfig,
    out_dir: str | Path,
    registry_dir: str | Path,
    validation_manifest: str | None = None,
    offline_hyps: str | None = None,
    boost: BoostList | None = None,
) -> DeployStepRecord:
    """Ship a model with a deployer plugin and check served parity on the held-out rows (`flows.deploying`).
    A failed deploy or parity is a record with `ok=False` and the reason, not an exception: the cycle then keeps
    the previous champion and says why."""
    from asr_flywheel.flows.deploying import deploy_and_verify

    outcome = deploy_and_verify(
        model_path,
        validation_manifest,
        offline_hyps,
        cfg,
        out_dir=Path(out_dir) / "deploy",
        deployer=deployer,
        registry_dir=registry_dir,
        boost=boost,
    )
    failed = None
    if not outcome.ok:
        failed = DEPLOY_STAGE if outcome.record is None else PARITY_STAGE
    return DeployStepRecord(
        deployer=outcome.deployer,
        ok=outcome.ok,
        reason=outcome.reason,
        endpoint=outcome.endpoint,
        version=outcome.version,
        failed=failed,
        served=outcome.ok and outcome.endpoint is not None,
        rolled_back_to=outcome.rolled_back_to,
        parity=outcome.parity.to_dict() if outcome.parity else None,
        shipped=outcome.record,
        files=list(outcome.files),
    )


def promote(*, registry_dir: str | Path, model_id: str, reason: str, started_from: str | None) -> Promotion:
    """Make a candidate the champion (the next cycle starts from it), only while the champion is still the one
    its cycle started from (`started_from`; None = the base model): else `promoted=False` and why."""
    from asr_flywheel.registry import Registry, Superseded

    reg = Registry(registry_dir)
    try:
        reg.promote(model_id, reason, replacing=started_from)
    except Superseded as exc:
        return Promotion(model_id=model_id, reason=str(exc), promoted=False, files=[str(reg.path)])
    return Promotion(model_id=model_id, reason=reason, files=[str(reg.path)])


def trained_on(split_rec: SplitRecord) -> SplitInfo:
    """The split's training terms, voices and audio: the re-score reports seen vs unseen terms and voices with
    them and records that none of its rows were trained on."""
    from asr_flywheel.split import read_split

    return read_split(split_rec.dir)


CHART_FILE = "ker_by_category.png"


def update_chart(ws: Workspace, number: int) -> Path | None:
    """Redraw KER per category across every scored cycle up to `number` (baseline, the boost lever's held-out
    scoring when tried, and the fine-tune's held-out points) into the workspace and the cycle directory. None
    (with the reason logged) when matplotlib is not installed."""
    from asr_flywheel.chart import cycle_ker_from_metrics, write_ker_chart
    from asr_flywheel.metrics_record import load_metrics

    points = []
    for c in ws.cycles():
        if c.number > number:
            break
        scored = (
            (f"cycle {c.number} baseline", c.baseline_dir),
            (f"cycle {c.number} held-out, boosted", c.boost_dir),
            (f"cycle {c.number} held-out", c.after_dir),
        )
        for label, d in scored:
            if (d / "metrics.json").is_file():
                points.append(cycle_ker_from_metrics(label, load_metrics(d / "metrics.json")))
    if not points:
        return None
    try:
        png = write_ker_chart(points, ws.charts_dir / CHART_FILE)
    except ImportError as exc:
        logging.getLogger(__name__).warning("no KER chart: %s (pip install matplotlib)", exc)
        return None
    fio.write_bytes(ws.cycle(number).path / CHART_FILE, png.read_bytes())
    return ws.cycle(number).path / CHART_FILE
