"""What each step of a cycle returns: typed records, the same for the CLI verbs and the flow's tasks.

A record holds paths (as strings) and the few numbers the next step or a human needs; the full data lives in the
files it names. `files` lists what must still exist for the step to count as finished when a cycle resumes
(`cycle.json` stores `to_dict()`, a rerun rebuilds the record with `from_dict`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, TypeVar

from asr_flywheel.cycle import ManifestRef
from asr_flywheel.metrics_record import Breakdown, Headline, KerGroup

R = TypeVar("R", bound="StepRecord")


@dataclass(frozen=True)
class StepRecord:
    files: list[str] = field(default_factory=list, kw_only=True)

    #: Name of the step in `cycle.json`.
    step: ClassVar[str] = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[R], data: dict[str, Any]) -> R:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})

    def files_exist(self) -> bool:
        return all(Path(p).exists() for p in self.files)


@dataclass(frozen=True)
class ScoreRecord(StepRecord):
    """One scored model on one set of rows (`flywheel score`, `flywheel eval`, the baseline and the re-score)."""

    cycle: int
    scope: str
    model: str
    metrics: str
    leaderboard: str
    #: The headline of `metrics` (the whole record is in the file).
    headline: Headline
    by_category: Breakdown = field(default_factory=dict)
    #: The cycle-comparison markdown file (re-scores compared with the cycle before), else None.
    comparison: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ScoreRecord:
        """Back from cycle.json; records written before the headline was typed (flat `n`, `wer`...) load too."""
        head = data.get("headline") or {k: data[k] for k in _HEADLINE_FIELDS if k in data}
        by_category = {c: g if isinstance(g, KerGroup) else KerGroup(**g) for c, g in data["by_category"].items()}
        names = {f.name for f in dataclasses.fields(cls)} - {"headline", "by_category"}
        return cls(
            headline=head if isinstance(head, Headline) else Headline(**head),
            by_category=by_category,
            **{k: v for k, v in data.items() if k in names},
        )

    @property
    def leaderboard_markdown(self) -> str:
        return Path(self.leaderboard).read_text()

    @property
    def comparison_markdown(self) -> str | None:
        return Path(self.comparison).read_text() if self.comparison else None

    def summary(self) -> str:
        h = self.headline
        return f"scored {h.n} rows: WER {_f(h.wer)}  CER {_f(h.cer)}  KER {_f(h.ker)} (n={h.ker_n})  SER {_f(h.ser)}"


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


_HEADLINE_FIELDS = frozenset(f.name for f in dataclasses.fields(Headline))


@dataclass(frozen=True)
class GateRecord(StepRecord):
    outcome: str
    reason: str
    proceed: bool
    forced: bool
    priority_ker: float | None
    priority_n: int
    rows: int
    first_eval: bool
    gate_json: str
    gate_md: str

    @property
    def markdown(self) -> str:
        return Path(self.gate_md).read_text()


@dataclass(frozen=True)
class SplitRecord(StepRecord):
    dir: str
    train: str
    validation: str
    validation_version: str
    train_rows: int
    validation_rows: int
    counts: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    @property
    def held_out(self) -> ManifestRef:
        """The validation rows as a manifest version: what the re-score and the decision use."""
        return ManifestRef(self.validation, self.validation_version, self.validation_rows)


@dataclass(frozen=True)
class TrainRecord(StepRecord):
    model: str
    run_info: str
    backend: str
    decoder: str | None


@dataclass(frozen=True)
class DecisionRecord(StepRecord):
    decision: str
    keep: bool
    reason: str
    relative_change: float | None
    per_category: list[dict]
    decision_json: str
    decision_md: str
    #: The control-set guard (`ControlCheck.to_dict()`), when a control manifest is configured.
    control: dict | None = None
    #: KER on terms the model never trained on, reported apart (they do not decide).
    unseen: dict | None = None
    #: KER on rows of seen terms spoken by voices never trained on, reported apart.
    unseen_voices: dict | None = None
    #: Targeted held-out KER before → after (what the decision compared).
    ker_before: float | None = None
    ker_after: float | None = None

    @property
    def markdown(self) -> str:
        return Path(self.decision_md).read_text()

    def summary(self) -> str:
        """`BOOST: targeted KER 0.950 → 0.400` and, when known, unseen-term KER before → after."""
        text = f"{self.decision}: targeted KER {_f(self.ker_before)} → {_f(self.ker_after)}"
        if self.unseen:
            u = self.unseen["all"]
            text += f"; unseen terms {_f(u['ker_before'])} → {_f(u['ker_after'])} (n={u['n']})"
        return text


@dataclass(frozen=True)
class Registration(StepRecord):
    """A trained model entered in the registry as a candidate (never the champion by registering)."""

    model_id: str
    registry: str


@dataclass(frozen=True)
class Review(StepRecord):
    """A human's verdict on a KEEP candidate when approval is required."""

    approved: bool
    reviewer: str
    reason: str

    def describe(self) -> str:
        verdict = "approved" if self.approved else "rejected"
        return f"{verdict} by {self.reviewer or 'an unnamed reviewer'}: {self.reason or '(no reason given)'}"


#: Which stage of a deploy failed (`DeployStepRecord.failed`).
DEPLOY_STAGE, PARITY_STAGE = "deploy", "parity"


@dataclass(frozen=True)
class DeployStepRecord(StepRecord):
    """A deploy and its served-parity check; `ok` only when both succeeded (else `reason` says why).

    `failed` names the stage that failed ("deploy": nothing new serves; "parity": the new version served other
    transcripts than offline and was rolled back), None when `ok`. `served` is False for a deployer that only
    writes build files (Riva): nothing answers yet, so there was no parity to check.
    """

    deployer: str
    ok: bool
    reason: str
    endpoint: str | None
    version: str | None
    failed: str | None = None
    served: bool = False
    rolled_back_to: str | None = None
    #: `ParityReport.to_dict()` when parity ran (rows, mismatches, offline and served metrics).
    parity: dict | None = None
    #: The deploy record as the deployer returned it (`plugins.contracts.DeployRecord`), when it shipped.
    shipped: dict | None = None


@dataclass(frozen=True)
class Promotion(StepRecord):
    """A candidate made champion, or not (`promoted=False`: the champion changed since its cycle started)."""

    model_id: str
    reason: str
    promoted: bool = True


@dataclass(frozen=True)
class CycleOutcome:
    """What a run of `flywheel_cycle` did, for the caller, the run page and `flywheel cycle`'s output.

    status: "complete" (the cycle ran to its end), "stopped-at-gate", or "duplicate" (this manifest version was
    cycled before: nothing was done). outcome: the gate outcome or the decision; for a KEEP candidate that did
    not become champion, REJECTED (a human said no), DEPLOY_FAILED, PARITY_FAILED, NOT_SERVED or SUPERSEDED
    (`flows.approval`), with `deploy` and `note` saying why and who serves now.
    """

    status: str
    cycle: int
    outcome: str | None
    run_name: str = ""
    decision: str | None = None
    model_id: str | None = None
    champion_changed: bool = False
    deployed: bool = False
    review: str | None = None
    #: What the deploy (and its served-parity check) said, when deploying is on.
    deploy: str | None = None
    #: Why the champion did not change although the decision was KEEP (and who serves now), when it did not.
    note: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self) -> str:
        """One line for the run page's state message."""
        if self.status == "duplicate":
            return f"manifest version already cycled in cycle {self.cycle} ({self.outcome}): nothing to do"
        text = f"cycle {self.cycle}: {self.outcome}"
        if self.review:
            text += f" ({self.review})"
        if self.champion_changed:
            text += f"; {self.model_id} is the champion"
        if self.deploy:
            text += f"; deploy: {self.deploy}"
        if self.note:
            text += f"; {self.note}"
        return text
