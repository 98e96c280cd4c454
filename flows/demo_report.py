"""What the demo prints: each cycle's leaderboards, gate and decision, the headline numbers, and where things are.

Every number is read back from the cycles' own files (cycle.json, decision.json, per_sample.jsonl) into typed
records; the targets of issue 9 are stated next to them (met or not). The demo reports, it never adjusts.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.build.options import BuildReport
from asr_flywheel.cycle import CycleDir, StartingPoint, Workspace
from asr_flywheel.decision import DecisionResult
from asr_flywheel.flows.records import CycleOutcome, GateRecord, TrainRecord
from asr_flywheel.metrics import NonTermWer, non_term_wer
from asr_flywheel.normalize import normalize_many
from asr_flywheel.plugins.contracts import MadeBase
from asr_flywheel.split import HeldoutSize, heldout_size

#: Issue 9's targets for the general base on clinical rows (reported, never enforced).
MAX_BASE_NON_TERM_WER = 0.3
MIN_BASE_PRIORITY_KER = 0.5
RULE = "=" * 100


@dataclass(frozen=True)
class CycleReport:
    """One demo cycle, read back from its directory."""

    outcome: CycleOutcome
    path: Path
    start: StartingPoint | None
    gate: GateRecord | None
    decision: DecisionResult | None
    #: The starting model's WER on the words around the terms of the scored clinical rows.
    carrier: NonTermWer | None
    heldout: HeldoutSize | None
    #: The boost lever's decision (the starting model with the manifest's terms boosted), when the cycle tried it.
    boost: DecisionResult | None = None
    #: What building this cycle's manifest cost and what the judge heard (None: not built by the demo).
    build: BuildReport | None = None
    #: Seconds the fine-tune ran (None: the cycle did not train).
    train_seconds: float | None = None


@dataclass(frozen=True)
class DemoSummary:
    base: MadeBase
    cycles: tuple[CycleReport, ...]


def cycle_report(ws: Workspace, outcome: CycleOutcome, priority: tuple[str, ...]) -> CycleReport:
    d: CycleDir = ws.cycle(outcome.cycle)
    record = d.read_record()
    gate = d.step("gate")
    decision = d.path / "decision.json"
    per_sample = d.baseline_dir / "per_sample.jsonl"
    validation = d.split_dir / "validation.jsonl"
    boost = d.boost_dir / "decision.json"
    return CycleReport(
        outcome=outcome,
        path=d.path,
        start=StartingPoint(**record["start"]) if record.get("start") else None,
        gate=GateRecord.from_dict(gate) if gate else None,
        decision=DecisionResult.from_dict(fio.read_json(decision)) if decision.is_file() else None,
        carrier=_carrier_wer(per_sample) if per_sample.is_file() else None,
        heldout=_heldout_size(validation, priority) if validation.is_file() else None,
        boost=DecisionResult.from_dict(fio.read_json(boost)) if boost.is_file() else None,
        train_seconds=_train_seconds(d.step("train")),
    )


def _train_seconds(step: dict | None) -> float | None:
    """The fine-tune's fit time, from the run info its `train` step recorded (None: the cycle did not train)."""
    if not step:
        return None
    run_info = Path(TrainRecord.from_dict(step).run_info)
    return (fio.read_json(run_info).get("timings") or {}).get("fit_s") if run_info.is_file() else None


def _carrier_wer(per_sample: Path) -> NonTermWer:
    rows = [r for r in fio.read_jsonl(per_sample) if r.get("term")]
    return non_term_wer(*(normalize_many([r[k] for r in rows]) for k in ("ref", "hyp", "term")))


def _heldout_size(validation: Path, priority: tuple[str, ...]) -> HeldoutSize:
    rows = fio.read_jsonl(validation)
    return heldout_size([r.get("term") for r in rows], [r.get("entity_category") for r in rows], priority)


def print_cycle(report: CycleReport) -> None:
    print("\n" + RULE)
    root = report.path.parents[1]
    boards = ("baseline/leaderboard_cycle*.md", "gate.md", "boosted/leaderboard_cycle*.md", "boosted/decision.md")
    for name in (*boards, "after/leaderboard_cycle*.md", "decision.md"):
        for p in sorted(report.path.glob(name)):
            text = p.read_text()
            if "leaderboard" in p.name:  # headline and categories; the full board is in the file
                text = text.split("## 3.")[0]
            print(f"\n--- {p.relative_to(root)} ---\n{text.rstrip()}")
    if report.heldout:
        print(f"\n{report.heldout.sentence()}")
    o = report.outcome
    print(f"\ncycle {o.cycle}: {o.status} → {o.outcome}{'  (deployed)' if o.deployed else ''}")


def _verdict(ok: bool) -> str:
    return "met" if ok else "NOT met on this run"


def print_numbers(summary: DemoSummary) -> None:
    print("\n" + RULE + "\nNumbers (from the cycles' cycle.json, decision.json and per_sample.jsonl):")
    print(f"  base model, held-out general-English WER: {summary.base.heldout_wer:.3f}")
    for c in summary.cycles:
        n, first = c.outcome.cycle, c is summary.cycles[0]
        if c.build:
            _print_build(n, c.build)
        if c.carrier and c.carrier.wer is not None:
            target = f"; target for the base <= {MAX_BASE_NON_TERM_WER}: " if first else ""
            target += _verdict(c.carrier.wer <= MAX_BASE_NON_TERM_WER) if first else ""
            print(f"  cycle {n}: starting model's WER on clinical non-term words {c.carrier.wer:.3f} "
                  f"({c.carrier.words} words){target}")  # fmt: skip
        if c.gate and c.gate.priority_ker is not None:
            pk = c.gate.priority_ker
            target = f"; target for the base >= {MIN_BASE_PRIORITY_KER}: " if first else ""
            target += _verdict(pk >= MIN_BASE_PRIORITY_KER) if first else ""
            print(f"  cycle {n}: gate {c.gate.outcome}, priority KER {pk:.3f} (n={c.gate.priority_n}){target}")
        if c.boost:
            _print_decision(f"cycle {n}, boosting alone (no training)", c.boost)
        if c.decision and c.decision.decision != "BOOST":
            _print_decision(f"cycle {n}", c.decision)
        trained = "did not train" if c.train_seconds is None else f"fine-tuning took {c.train_seconds:.0f} s"
        print(f"  cycle {n}: {trained}")
        served = " (deployed, served parity held)" if c.outcome.deployed else ""
        print(f"  cycle {n}: outcome {c.outcome.outcome}{served}")


def _print_build(n: int, b: BuildReport) -> None:
    print(f"  cycle {n}: manifest +{b.rows_added} rows ({b.rows_total} in all), synthesis {b.synthesis_seconds:.0f} s")
    j = b.judge
    if j and j.overall:
        print(
            f"  cycle {n}: judge {j.model}, carrier-word WER of the new clips mean {j.overall['mean']:.3f}, "
            f"median {j.overall['median']:.3f} (n={j.overall['n']}); {j.rejected} rejected (> {j.limit:g}); "
            f"judging took {j.seconds:.0f} s, overlapped with synthesis"
        )


def _print_decision(who: str, d: DecisionResult) -> None:
    ci = "" if d.ci_low is None or d.ci_high is None else f", 95% CI of the change {d.ci_low:+.3f} to {d.ci_high:+.3f}"
    print(
        f"  {who}: held-out priority KER {d.ker_before:.3f} → {d.ker_after:.3f} (n={d.n_targeted}{ci}) → {d.decision}"
    )
    unseen = (d.unseen or {}).get("all")
    if unseen:
        print(f"  {who}: unseen-term KER {unseen['ker_before']:.3f} → {unseen['ker_after']:.3f} (n={unseen['n']})")
    voices = (d.unseen_voices or {}).get("all")
    if voices:
        print(f"  {who}: unseen-voice KER {voices['ker_before']:.3f} → {voices['ker_after']:.3f} (n={voices['n']})")
    control = d.control_check
    if control:
        rise = "n/a" if control.rise is None else f"{control.rise:+.1%}"
        print(
            f"  {who}: control WER {control.wer_before:.3f} → {control.wer_after:.3f} "
            f"({rise}, limit +{control.max_rise:.0%}, n={control.n})"
        )
    else:
        print(f"  {who}: control set: not evaluated")


def print_where(ws: Workspace, endpoint: str | None, server_running: bool, config: Path, engines: str) -> None:
    print("\n" + RULE)
    print("Where everything is:")
    print(f"  leaderboards and decisions: {ws.root}/cycles/<n>/ (baseline/, after/, gate.md, decision.md)")
    charts = sorted((ws.root / "charts").glob("*.png"))
    print(f"  chart: {charts[-1] if charts else '(none written)'}")
    print(f"  model registry: {ws.registry_dir}")
    if endpoint:
        state = "still running (`flywheel serve stop` to stop it)" if server_running else "stopped"
        print(f"  served endpoint: {endpoint} (tritonserver, {state})")
    else:
        print("  served endpoint: none (deploying was switched off for this run)")
    name = ws.root.name
    print(
        f"  Prefect runs: `flywheel server up --home {ws.root / 'prefect'}`, then http://127.0.0.1:4200 lists the"
        f" runs {name}-cycle-1 and {name}-cycle-2 with their artifacts"
    )
    print(f"  demo config: {config}")
    print(f"\nThe models are tiny (FastConformer-CTC, 1.6 million parameters) and the speech is synthetic ({engines}):")
    print("they show the flywheel's behaviour, not clinical accuracy. Every number above was computed by the pipeline.")
