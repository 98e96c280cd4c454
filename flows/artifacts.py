"""What a cycle shows in the Prefect UI: artifacts under one key scheme, the run's name, tags and outcome.

Runs are named `<flywheel>-cycle-<N>` and keys are `<flywheel>-cycle-<N>-<what>`, where `<flywheel>` is
`[cycle] name` (default: the workspace folder's name), so many flywheels can share one Prefect server:
`cardiology-cycle-7-baseline-leaderboard`, `-heldout-leaderboard`, `-comparison`, `-gate`, `-decision`, `-chart`,
`-outcome` (and `-table` variants), `-control` (+ `-table`) when a control set is configured, `-deploy` and
`-parity` (+ `-mismatches`) when deploying. One key belongs to one cycle of one flywheel, so the Artifacts page
lists each flywheel's history cycle by cycle; a resumed run of a cycle adds a new version of that cycle's keys,
never another cycle's. Every artifact here is
created in the flow's context (flow-level: shown on the run page), not inside a task.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from asr_flywheel.flows.records import CycleOutcome, DecisionRecord, DeployStepRecord, GateRecord, ScoreRecord

if TYPE_CHECKING:
    from asr_flywheel.control import ControlCheck

#: The two scored sets of a cycle, by the step that scored them.
BASELINE, HELDOUT = "baseline", "heldout"
#: The starting model with the boost list (held-out rows), and the candidate with it (`[cycle] boost`).
BOOSTED, HELDOUT_BOOSTED = "boosted", "heldout-boosted"
_SCOPES = {
    BASELINE: "baseline, all rows",
    HELDOUT: "re-score of the fine-tuned model, held-out rows",
    BOOSTED: "the starting model with the manifest's terms boosted, held-out rows",
    HELDOUT_BOOSTED: "the fine-tuned model with the manifest's terms boosted, held-out rows",
}


def _slug(raw: str) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    text = "".join(c if c.isascii() and c.isalnum() else "-" for c in raw.lower())
    return "-".join(part for part in text.split("-") if part)


@dataclass(frozen=True)
class CycleLabel:
    """How one cycle of one flywheel is named on a (possibly shared) Prefect server."""

    flywheel: str
    number: int

    @classmethod
    def of(cls, configured_name: str, workspace: Path, number: int) -> CycleLabel:
        return cls(flywheel_name(configured_name, workspace), number)

    @property
    def run_name(self) -> str:
        return f"{self.flywheel}-cycle-{self.number}"

    def key(self, *parts: str) -> str:
        return _slug("-".join([self.run_name, *parts]))

    def tags(self) -> list[str]:
        return [self.run_name, f"flywheel-{self.flywheel}"]


def flywheel_name(configured: str, workspace: Path) -> str:
    """`[cycle] name`, else the workspace folder's name, as a key-safe slug."""
    return _slug(configured or Path(workspace).name) or "flywheel"


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def publish_score(label: CycleLabel, which: str, rec: ScoreRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    scope = _SCOPES[which]
    create_markdown_artifact(
        key=label.key(which, "leaderboard"),
        markdown=rec.leaderboard_markdown,
        description=f"Cycle {label.number} leaderboard ({scope}), model {rec.model}",
    )
    create_table_artifact(
        key=label.key(which, "ker-by-category"),
        description=f"Cycle {label.number} KER by entity category ({scope})",
        table=[
            {
                "category": c,
                "ker": _round(g.ker),
                "n": g.n,
                "ci_low": _round(g.ci_low),
                "ci_high": _round(g.ci_high),
            }
            for c, g in rec.by_category.items()
        ],
    )
    if rec.comparison_markdown:
        create_markdown_artifact(
            key=label.key("comparison"),
            markdown=rec.comparison_markdown,
            description=f"Cycle {label.number}: base vs fine-tuned model on held-out rows",
        )


def publish_gate(label: CycleLabel, rec: GateRecord) -> None:
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key=label.key("gate"), markdown=rec.markdown, description=f"Gate: {rec.outcome}")
    create_table_artifact(
        key=label.key("gate", "table"),
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


def publish_decision(label: CycleLabel, rec: DecisionRecord, which: str = "decision") -> None:
    """The decision (`which`: "decision", or "boost-decision" for the boost lever's) and its per-category table."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(key=label.key(which), markdown=rec.markdown, description=f"Decision: {rec.decision}")
    create_table_artifact(
        key=label.key(which, "table"),
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


def publish_control(label: CycleLabel, check: ControlCheck, before: ScoreRecord, after: ScoreRecord) -> None:
    """The control-set guard: WER of the starting model and the candidate, and whether the rise is allowed."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    create_markdown_artifact(
        key=label.key("control"),
        markdown=f"# Cycle {label.number}: control set (general English)\n\n{check.sentence()}.\n\n"
        f"- before: `{before.model}` ({before.leaderboard})\n- after: `{after.model}` ({after.leaderboard})\n",
        description=f"Cycle {label.number} control guard: {'REGRESSED' if check.regressed else 'within the guard'}",
    )
    create_table_artifact(
        key=label.key("control", "table"),
        table=[
            {"model": r.model, "wer": _round(r.headline.wer), "cer": _round(r.headline.cer), "n": r.headline.n}
            for r in (before, after)
        ],
        description=check.sentence(),
    )


def publish_deploy(label: CycleLabel, rec: DeployStepRecord) -> None:
    """The deploy record, and the served-parity table (offline vs served, per metric and per differing row)."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    verdict = "OK" if rec.ok else f"FAILED at {rec.failed}"
    lines = [
        f"# Cycle {label.number} deploy: {verdict}",
        "",
        f"- deployer: `{rec.deployer}`",
        f"- version: {rec.version or '-'}; endpoint: `{rec.endpoint or '-'}`; served: {rec.served}",
        f"- rolled back to: {rec.rolled_back_to or '-'}",
        f"- {rec.reason}",
    ]
    create_markdown_artifact(key=label.key("deploy"), markdown="\n".join(lines) + "\n", description=verdict)
    if rec.parity is None:
        return
    p = rec.parity
    create_table_artifact(
        key=label.key("parity"),
        table=[
            {"metric": k, "offline": p["offline_metrics"][k], "served": p["served_metrics"][k]}
            for k in p["offline_metrics"]
        ],
        description=f"Served parity on {p['rows']} held-out rows: {p['summary']}",
    )
    if p["mismatches"]:
        create_table_artifact(
            key=label.key("parity", "mismatches"),
            table=[dict(m) for m in p["mismatches"]],
            description="Held-out rows the endpoint transcribed differently from the offline model",
        )


def chart_markdown(png: Path, title: str) -> str:
    """Prefect 3.8 image artifacts hold only a URL, so the PNG travels inside the markdown as a data: URI."""
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return f"# {title}\n\n![{title}](data:image/png;base64,{data})\n\nFile: `{png}`\n"


def publish_chart(label: CycleLabel, png: Path) -> None:
    from prefect.artifacts import create_markdown_artifact

    title = f"KER per entity category across cycles (up to cycle {label.number})"
    create_markdown_artifact(key=label.key("chart"), markdown=chart_markdown(png, title), description=title)


def publish_outcome(
    label: CycleLabel, outcome: CycleOutcome, *, run_id: str | None, details: list[str] | None = None
) -> None:
    """The outcome on the run page: a flow-level artifact with the reason and the numbers that decided it (gate
    reason, or targeted KER before → after with its CI, control guard, deploy), tags, and (by the caller) the
    final state's message."""
    from prefect.artifacts import create_markdown_artifact

    if outcome.status != "duplicate":  # a no-op run adds nothing to the cycle's keys (its name and tag say it)
        lines = [f"# Cycle {outcome.cycle}: **{outcome.outcome}**", "", outcome.summary(), ""]
        lines += [f"- {d}" for d in details or []]
        create_markdown_artifact(
            key=label.key("outcome"), markdown="\n".join(lines).rstrip() + "\n", description=outcome.summary()
        )
    if run_id:
        tag = "duplicate" if outcome.status == "duplicate" else f"outcome-{(outcome.outcome or 'none').lower()}"
        label_run(run_id, tags=[*label.tags(), tag])


def say_waiting(run_id: str, message: str) -> None:
    """A waiting run is never silent: the line goes to the run's log and becomes its state message (shown in the
    runs list), so the UI says what it waits for."""
    from prefect import get_run_logger

    get_run_logger().warning(message)
    set_state_message(run_id, message)


def set_state_message(run_id: str, message: str) -> None:
    import contextlib
    from uuid import UUID

    from prefect.client.orchestration import get_client
    from prefect.states import Running

    if not run_id:
        return
    with contextlib.suppress(Exception), get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(run_id), Running(message=message), force=True)


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
