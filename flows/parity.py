"""Served parity: the served model must give, row for row, the transcripts the offline path gave.

The served rows are scored with the offline eval step itself (the endpoint is a transcriber plugin), then both
transcript lists are compared exactly per row, and both are scored by the same scorer for the aggregate view.
Exact equality is the right bar: the served model.py runs the offline transcriber on the same audio, so any
difference is a serving problem (wrong resampling, different decoding, truncated audio), never noise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.metrics_record import Headline

#: The headline numbers shown side by side (all of the headline must be equal for parity).
METRICS = ("wer", "cer", "ker", "ser")


@dataclass(frozen=True)
class ParityRow:
    line: int
    audio_filepath: str
    offline: str
    served: str


@dataclass
class ParityReport:
    endpoint: str
    rows: int
    mismatches: list[ParityRow]
    offline_metrics: Headline
    served_metrics: Headline
    files: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.mismatches and self.offline_metrics == self.served_metrics

    @property
    def summary(self) -> str:
        if self.ok:
            return f"all {self.rows} rows identical"
        lines = ", ".join(str(m.line) for m in self.mismatches[:10])
        more = "" if len(self.mismatches) <= 10 else f" (+{len(self.mismatches) - 10} more)"
        off, srv = asdict(self.offline_metrics), asdict(self.served_metrics)
        deltas = ", ".join(f"{k} {off[k]} → {srv[k]}" for k in off if off[k] != srv[k])
        return f"{len(self.mismatches)}/{self.rows} rows differ (lines {lines}{more}); {deltas or 'aggregates equal'}"

    def to_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok, "summary": self.summary}

    def markdown(self) -> str:
        head = [
            f"# Served parity: {'PASS' if self.ok else 'FAIL'}",
            "",
            f"- endpoint: `{self.endpoint}`",
            f"- rows: {self.rows}; {self.summary}",
            "",
            "| metric | offline | served |",
            "|---|---|---|",
        ]
        head += [f"| {k} | {getattr(self.offline_metrics, k)} | {getattr(self.served_metrics, k)} |" for k in METRICS]
        if self.mismatches:
            head += ["", "| line | audio | offline | served |", "|---|---|---|---|"]
            head += [
                f"| {m.line} | `{Path(m.audio_filepath).name}` | {m.offline} | {m.served} |" for m in self.mismatches
            ]
        return "\n".join(head) + "\n"


def check_parity(
    endpoint: str,
    validation_manifest: str | Path,
    offline_hyps: str | Path,
    cfg: FlywheelConfig,
    out_dir: str | Path,
) -> ParityReport:
    """Score the rows through `endpoint` (writing everything offline eval writes) and compare with offline."""
    from asr_flywheel.flows.model_steps import evaluate

    offline_rows(validation_manifest, offline_hyps, cfg)  # a mismatched hyps file is bad input: fail before scoring
    served = evaluate(
        validation_manifest, endpoint, out_dir, config=cfg, batch_size=cfg.deploy.concurrency, scope="served parity"
    )
    return compare_with_offline(endpoint, validation_manifest, offline_hyps, served, cfg, out_dir)


def offline_rows(manifest_path: str | Path, offline_hyps: str | Path, cfg: FlywheelConfig) -> list[str]:
    """The offline transcripts in manifest row order (InputError naming every unmatched row)."""
    from asr_flywheel.hyps import align_hyps, read_hyps
    from asr_flywheel.validation import load_manifest

    manifest = load_manifest(manifest_path, cfg, check_audio=False)
    return align_hyps(manifest, read_hyps(offline_hyps), hyps_name=str(offline_hyps))


def compare_with_offline(
    endpoint: str, manifest_path: str | Path, offline_hyps: str | Path, served, cfg: FlywheelConfig, out_dir
) -> ParityReport:
    """Row-by-row and aggregate comparison of an endpoint's eval result (`steps.EvalResult`) with offline hyps;
    writes parity.json and parity.md next to the served eval's files."""
    from asr_flywheel.hyps import align_hyps, read_hyps
    from asr_flywheel.scoring import score_manifest
    from asr_flywheel.validation import load_manifest

    manifest = load_manifest(manifest_path, cfg, check_audio=False)
    offline = align_hyps(manifest, read_hyps(offline_hyps), hyps_name=str(offline_hyps))
    served_hyps = [r["hyp"] for r in fio.read_jsonl(served.paths["offline_hyps"])]
    mismatches = [
        ParityRow(line, audio, o, s)
        for line, audio, o, s in zip(manifest.lines, manifest.audio_paths, offline, served_hyps, strict=True)
        if o != s
    ]
    offline_report = score_manifest(manifest, offline, config=cfg, model_name="offline", scope="served parity")
    report = ParityReport(
        endpoint,
        len(manifest),
        mismatches,
        offline_report.metrics.headline,
        served.report.metrics.headline,
        [str(p) for p in served.paths.values()],
    )
    out = Path(out_dir)
    report.files.append(str(fio.write_json(out / "parity.json", report.to_dict())))
    report.files.append(str(fio.write_text(out / "parity.md", report.markdown())))
    return report
