"""What a cycle shows in the Prefect UI: artifacts under one key scheme, the run's name, tags and outcome.

Keys are `cycle-<N>-<what>`: `cycle-7-baseline-leaderboard`, `cycle-7-heldout-leaderboard`, `cycle-7-comparison`,
`cycle-7-gate`, `cycle-7-decision`, `cycle-7-chart`, `cycle-7-outcome` (and `-table` variants), `cycle-7-control`
(+ `-table`) when a control set is configured, `cycle-7-deploy` and `cycle-7-parity` (+ `-mismatches`) when
deploying. One key belongs to one cycle, so the Artifacts page lists the flywheel's history cycle by cycle; a
resumed run of a cycle adds a new version of that cycle's keys, never another cycle's. Every artifact here is
created in the flow's context (flow-level: shown on the run page), not inside a task.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import TYPE_CHECKING

from asr_flywheel.flows.records import CycleOutcome, DecisionRecord, DeployRecord, GateRecord, ScoreRecord

if TYPE_CHECKING:
    from asr_flywheel.control import ControlCheck

#: The two scored sets of a cycle, by the step that scored them.
BASELINE, HELDOUT = "baseline", "heldout"


def artifact_key(cycle: int, *parts: str) -> str:
    """`cycle-<N>-<parts>`; Prefect artifact keys allow only lowercase letters, digits and dashes."""
    raw = "-".join(["cycle", str(cycle), *parts]).lower()
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in raw).strip("-")


def run_name(cycle: int, *, duplicate: bool = False) -> str:
    return f"cycle-{cycle}-already-cycled" if duplicate else f"cycle-{cycle}"


def publish_score(cycle: int, which: str, rec: ScoreRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    label = "baseline, all rows" if which == BASELINE else "re-score of the fine-tuned model, held-out rows"
    create_markdown_artifact(
        key=artifact_key(cycle, which, "leaderboard"),
        markdown=rec.leaderboard_markdown,
        description=f"Cycle {cycle} leaderboard ({label}), model {rec.model}",
    )
    create_table_artifact(
        key=artifact_key(cycle, which, "ker-by-category"),
        description=f"Cycle {cycle} KER by entity category ({label})",
        table=[
            {
                "category": c,
                "ker": round(v["ker"], 4),
                "n": v["n"],
                "ci_low": round(v["ci_low"], 4),
                "ci_high": round(v["ci_high"], 4),
            }
            for c, v in rec.by_category.items()
        ],
    )
    if rec.comparison_markdown:
        create_markdown_artifact(
            key=artifact_key(cycle, "comparison"),
            markdown=rec.comparison_markdown,
            description=f"Cycle {cycle}: base vs fine-tuned model on held-out rows",
        )


def publish_gate(cycle: int, rec: GateRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key=artifact_key(cycle, "gate"), markdown=rec.markdown, description=f"Gate: {rec.outcome}")
    create_table_artifact(
        key=artifact_key(cycle, "gate", "table"),
        table=[
            {
                "outcome": rec.outcome,
                "priority_ker": rec.priority_ker,
                "priority_n": rec.priority_n,
                "rows": rec.rows,
                "first_eval": rec.first_eval,
                "proceed": rec.proceed,
                "forced": rec.forced,
            }
        ],
    )


def publish_decision(cycle: int, rec: DecisionRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key=artifact_key(cycle, "decision"), markdown=rec.markdown, description=f"Decision: {rec.decision}"
    )
    create_table_artifact(
        key=artifact_key(cycle, "decision", "table"),
        table=[
            {
                "category": r["category"],
                "n": r["n"],
                "ker_before": round(r["ker_before"], 4),
                "ker_after": round(r["ker_after"], 4),
                "delta": round(r["delta"], 4),
            }
            for r in rec.per_category
        ],
    )


def publish_control(cycle: int, check: ControlCheck, before: ScoreRecord, after: ScoreRecord) -> None:
    """The control-set guard: WER of the starting model and the candidate, and whether the rise is allowed."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key=artifact_key(cycle, "control"),
        markdown=f"# Cycle {cycle}: control set (general English)\n\n{check.sentence()}.\n\n"
        f"- before: `{before.model}` ({before.leaderboard})\n- after: `{after.model}` ({after.leaderboard})\n",
        description=f"Cycle {cycle} control guard: {'REGRESSED' if check.regressed else 'within the guard'}",
    )
    create_table_artifact(
        key=artifact_key(cycle, "control", "table"),
        table=[
            {"model": rec.model, "wer": round(rec.wer, 4), "cer": round(rec.cer, 4), "n": rec.n}
            for rec in (before, after)
        ],
        description=check.sentence(),
    )


def publish_deploy(cycle: int, rec: DeployRecord) -> None:
    """The deploy record, and the served-parity table (offline vs served, per metric and per differing row)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    verdict = "OK" if rec.ok else f"FAILED at {rec.failed}"
    lines = [
        f"# Cycle {cycle} deploy: {verdict}",
        "",
        f"- deployer: `{rec.deployer}`",
        f"- version: {rec.version or '-'}; endpoint: `{rec.endpoint or '-'}`; served: {rec.served}",
        f"- rolled back to: {rec.rolled_back_to or '-'}",
        f"- {rec.reason}",
    ]
    create_markdown_artifact(key=artifact_key(cycle, "deploy"), markdown="\n".join(lines) + "\n", description=verdict)
    if rec.parity is None:
        return
    p = rec.parity
    create_table_artifact(
        key=artifact_key(cycle, "parity"),
        table=[
            {"metric": k, "offline": p["offline_metrics"][k], "served": p["served_metrics"][k]}
            for k in p["offline_metrics"]
        ],
        description=f"Served parity on {p['rows']} held-out rows: {p['summary']}",
    )
    if p["mismatches"]:
        create_table_artifact(
            key=artifact_key(cycle, "parity", "mismatches"),
            table=[dict(m) for m in p["mismatches"]],
            description="Held-out rows the endpoint transcribed differently from the offline model",
        )


def chart_markdown(png: Path, title: str) -> str:
    """Prefect 3.8 image artifacts hold only a URL, so the PNG travels inside the markdown as a data: URI."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f"# {title}\n\n![{title}](data:image/png;base64,{data})\n\nFile: `{png}`\n"


def publish_chart(cycle: int, png: Path) -> None:
    from prefect.artifacts import create_markdown_artifact

    title = f"KER per entity category across cycles (up to cycle {cycle})"
    create_markdown_artifact(key=artifact_key(cycle, "chart"), markdown=chart_markdown(png, title), description=title)


def publish_outcome(outcome: CycleOutcome, *, run_id: str | None) -> None:
    """The outcome on the run page: a flow-level artifact, a tag, and (by the caller) the final state's message."""
    from prefect.artifacts import create_markdown_artifact

    if outcome.status != "duplicate":  # a no-op run adds nothing to the cycle's keys (its name and tag say it)
        create_markdown_artifact(
            key=artifact_key(outcome.cycle, "outcome"),
            markdown=f"# Cycle {outcome.cycle}: **{outcome.outcome}**\n\n{outcome.summary()}\n",
            description=outcome.summary(),
        )
    if run_id:
        tag = "duplicate" if outcome.status == "duplicate" else f"outcome-{(outcome.outcome or 'none').lower()}"
        label_run(run_id, tags=[f"cycle-{outcome.cycle}", tag])


def label_run(run_id: str, *, name: str | None = None, tags: list[str] | None = None) -> None:
    """Rename the flow run (the cycle number is known only after the claim) and add tags."""
    from uuid import UUID

    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        run = client.read_flow_run(UUID(run_id))
        kwargs: dict = {}
        if name:
            kwargs["name"] = name
        if tags:
            kwargs["tags"] = sorted({*run.tags, *tags})
        if kwargs:
            client.update_flow_run(UUID(run_id), **kwargs)
