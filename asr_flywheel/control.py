"""The control-set guard against forgetting (docs/design.md#decision): general-English WER before and after.

Clinical fine-tuning is known to make a model forget everyday English. Every cycle re-scores a control set of
general-English rows (`[cycle] control_manifest`) with the candidate; a rise in its WER of more than
`[decision] max_control_wer_rise` (relative) makes the candidate REGRESSED, whatever its KER. The guard uses
the headline WER (mean of per-row WER) that the leaderboard shows for the control set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from asr_flywheel.compare import relative_change
from asr_flywheel.config import DecisionConfig
from asr_flywheel.errors import InputError
from asr_flywheel.metrics_record import Metrics, as_metrics


@dataclass(frozen=True)
class ControlCheck:
    """Control-set (general English) WER of the base and the candidate: the guard against forgetting."""

    wer_before: float
    wer_after: float
    n: int
    max_rise: float

    @property
    def rise(self) -> float | None:
        return relative_change(self.wer_before, self.wer_after)

    @property
    def regressed(self) -> bool:
        rise = self.rise
        if rise is None:  # a perfect base: any control error is a rise
            return self.wer_after > 0
        return round(rise, 9) > self.max_rise

    def sentence(self) -> str:
        rise = "n/a (base WER 0)" if self.rise is None else f"{self.rise:+.1%}"
        verdict = "above" if self.regressed else "within"
        return (
            f"control-set WER {self.wer_before:.3f} → {self.wer_after:.3f} ({rise} relative, n={self.n}), "
            f"{verdict} the {self.max_rise:.0%} allowed rise"
        )

    def to_dict(self) -> dict:
        return {**asdict(self), "rise": self.rise, "regressed": self.regressed}

    @classmethod
    def from_dict(cls, data: dict) -> ControlCheck:
        """Back from `to_dict` (decision.json); `rise` and `regressed` are recomputed, never trusted."""
        return cls(data["wer_before"], data["wer_after"], data["n"], data["max_rise"])


def control_check(before_metrics: Metrics | dict, after_metrics: Metrics | dict, cfg: DecisionConfig) -> ControlCheck:
    """The guard's inputs from the base's and the candidate's metrics over the same control manifest."""
    before, after = as_metrics(before_metrics), as_metrics(after_metrics)
    vb, va = before.manifest_version, after.manifest_version
    if vb and va and vb != va:
        raise InputError(
            f"the control metrics were scored on different manifests (versions {vb[:12]} and {va[:12]}); "
            "score the base and the candidate on the same control set"
        )
    for name, m in (("before", before), ("after", after)):
        if m.headline.wer is None:
            raise InputError(f"control metrics ({name}) have no numeric `wer`")
    assert before.headline.wer is not None and after.headline.wer is not None
    return ControlCheck(before.headline.wer, after.headline.wer, after.headline.n, cfg.max_control_wer_rise)
