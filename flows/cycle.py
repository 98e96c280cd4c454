"""`flywheel_cycle`: one turn of the flywheel as a Prefect flow.

validate → check [hyperparameters] for the starting model's trainer → claim the manifest version
→ score the champion (or base) → gate → split → train (GPU slot) → [control set: starting model vs candidate →]
re-score held-out rows → decide → chart → register the candidate
→ [approve →] [deploy → served parity →] promote (`flows.approval`)

The control set (`[cycle] control_manifest`) guards against forgetting: its WER with the starting model and with
the candidate feed `control_check`, which the decision (REGRESSED above `[decision] max_control_wer_rise`) and the
held-out leaderboard show. A model's control score is cached in the workspace (`Workspace.control_dir`), so a
champion's is never recomputed.

Resuming: `cycle.json` is the one resume mechanism. Each finished step's record is written there, so re-running a
failed or killed cycle (same manifest version) skips finished steps and never redoes finished training. Prefect
task results are deliberately not persisted and no task cache is used: Prefect's default cache key includes the
flow run id, so it would never resume anything, and a second mechanism would disagree with the first.

A retry before training finished may bring corrected inputs (another base model): the steps done for the old
starting model are discarded (`CycleDir.starting_point`). Bad input fails fast and is never retried.

The run page says what happened: the run is renamed `cycle-N` (or `cycle-N-already-cycled`), tagged with the
outcome, ends with the outcome as its state message, and holds the leaderboards, gate, decision, chart and
outcome as flow-level artifacts (`flows.artifacts`).
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as prefect_run
from prefect.states import Cancelled, Completed

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostList
from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.control import ControlCheck
from asr_flywheel.cycle import (
    CycleDir,
    ManifestRef,
    StartingPoint,
    Turn,
    Workspace,
    WorkspaceBusyError,
    deploy_target,
    version_to_cycle,
)
from asr_flywheel.errors import InputError
from asr_flywheel.flows import artifacts, tasks
from asr_flywheel.flows.approval import settle
from asr_flywheel.flows.boosting import better_boosted, boosting, settle_boost
from asr_flywheel.flows.records import (
    CycleOutcome,
    DecisionRecord,
    GateRecord,
    R,
    Registration,
    ScoreRecord,
    SplitRecord,
    TrainRecord,
)
from asr_flywheel.flows.runners import task_runner_from_env
from asr_flywheel.flows.steps import release_models, require_model, trained_on, update_chart
from asr_flywheel.flows.transcription import require_boosting
from asr_flywheel.metrics_record import SCOPE_ALL, SCOPE_HELDOUT
from asr_flywheel.plugins.catalogue import check_sft_request
from asr_flywheel.plugins.manager import Plugins, check_hyperparameters
from asr_flywheel.registry import Registry
from asr_flywheel.secrets import SECRET_ENV_VARS
from asr_flywheel.split import SplitInfo

#: The control set's scope label, and the file caching a model's control score next to its scoring files.
SCOPE_CONTROL = "control set (general English)"

CONTROL_RECORD = "score_record.json"


def run_label() -> str:
    """The run's name from its first moment (before anything can fail): `<flywheel>-cycle`, renamed
    `<flywheel>-cycle-N` once the cycle number is claimed."""
    from prefect.runtime import flow_run

    params = flow_run.parameters or {}
    try:
        cfg = load_config(params.get("config_path"))
        name = artifacts.flywheel_name(cfg.cycle.name, Path(params.get("workspace") or cfg.workspace).resolve())
    except Exception:  # a bad config is reported by the flow itself, under this fallback name
        name = "flywheel"
    return f"{name}-cycle"


@flow(name="flywheel-cycle", flow_run_name=run_label, log_prints=True, task_runner=task_runner_from_env())
def flywheel_cycle(
    manifest: str | None = None,
    base_model: str | None = None,
    backend: str | None = None,
    workspace: str | None = None,
    config_path: str | None = None,
    rows: int = 0,
    added_rows: int = 0,
    content_hash: str = "",
    force_finetune_reason: str | None = None,
    deploy_model: bool | None = None,
    recycle: bool = False,
    queue: bool = True,
):
    """One cycle of the flywheel on `manifest`. `rows`, `added_rows` and `content_hash` come from the growth event:
    the announced version (the first `rows` rows, hash-checked) is cycled even if the file has grown since.
    `recycle` (a forced publication) cycles a version again even though a cycle of it completed. A workspace runs
    one cycle at a time: with `queue` (deployments) a later run waits, saying for whom; without (`flywheel cycle`
    without --wait) it ends Cancelled, naming the running one."""
    cfg = load_config(config_path)
    inputs = cycle_inputs(
        cfg, manifest=manifest, workspace=workspace, base_model=base_model, backend=backend, deploy_model=deploy_model
    )
    ws, deployer = inputs.workspace, inputs.deployer
    load_secret_blocks()
    ref = tasks.validate(manifest=inputs.manifest, cfg=cfg, content_hash=content_hash, rows=rows)
    control = tasks.validate(manifest=inputs.control_manifest, cfg=cfg) if inputs.control_manifest else None
    proposed = checked_start(cfg, ws, inputs.base_model, inputs.backend)
    run_id = str(prefect_run.id)
    try:
        turn = ws.take_turn(holder_line(run_id), wait=queue, report=lambda m: artifacts.say_waiting(run_id, m))
    except WorkspaceBusyError as exc:
        get_run_logger().warning(str(exc))
        return Cancelled(message=str(exc))
    try:
        claim = ws.claim_version(ref.version, ref.path, again=recycle, rows=ref.rows, flow_run_id=run_id)
        cycle = claim.cycle
        label = artifacts.CycleLabel.of(cfg.cycle.name, ws.root, cycle.number)
        if claim.status == "done":
            get_run_logger().info(
                "manifest version %s… was already cycled (cycle %s): nothing to do", ref.version[:12], cycle.number
            )
            artifacts.label_run(run_id, name=f"{label.run_name}-already-cycled")
            return finish(label, CycleOutcome("duplicate", cycle.number, cycle.read_record().get("outcome")), run_id)
        artifacts.label_run(run_id, name=label.run_name, tags=["recycled"] if recycle else None)
        turn.say(holder_line(run_id, label.run_name))
        run = CycleRun(cycle, ws, cfg, ref, deployer, force_finetune_reason, control, label=label, turn=turn)
        with cycle.lock():
            try:
                run.begin(proposed, event_rows=rows, event_added_rows=added_rows, flow_run_id=run_id)
                outcome = run_cycle(run)
                cycle.update_record(
                    status="complete",
                    outcome=outcome.outcome,
                    review=outcome.review,
                    deploy=outcome.deploy,
                    champion_changed=outcome.champion_changed,
                    note=outcome.note,
                )
            except BaseException as exc:
                record_failure(cycle, exc)
                raise
            finally:
                release_models()
    finally:
        turn.release()
    return finish(label, outcome, run_id, details=outcome_details(run))


def holder_line(run_id: str, name: str | None = None) -> str:
    """Who holds a workspace's turn, for the runs queued behind it."""
    import socket

    from asr_flywheel.cycle import now

    name = name or prefect_run.name or "?"
    return f"flow run {name} ({run_id}), pid {os.getpid()} on {socket.gethostname()}, since {now()}"


@dataclass(frozen=True)
class CycleInputs:
    """What one cycle works on, resolved once from (flags, config): the flow, `preflight` and the CLI use this."""

    manifest: str
    workspace: Workspace
    base_model: str
    #: The trainer backend asked for (flag, else `[cycle] backend`); None lets the registry and plugins decide.
    backend: str | None
    #: The deployer a KEEP ships with ("" = none).
    deployer: str
    control_manifest: str | None


def cycle_inputs(
    cfg: FlywheelConfig,
    *,
    manifest: str | None = None,
    workspace: str | None = None,
    base_model: str | None = None,
    backend: str | None = None,
    deploy_model: bool | None = None,
) -> CycleInputs:
    """THE resolution of a cycle's inputs: each flag wins over its `[cycle]` setting; a missing manifest or a
    deploy with no deployer is an `InputError` (exit 2)."""
    chosen = manifest or cfg.cycle.manifest
    if not chosen:
        raise InputError("no manifest given and none configured (`[cycle] manifest` in flywheel.toml)")
    return CycleInputs(
        manifest=chosen,
        workspace=Workspace(workspace or cfg.workspace),
        base_model=base_model or cfg.cycle.base_model,
        backend=backend or cfg.cycle.backend or None,
        deployer=deploy_target(cfg.cycle.deployer, deploy_model),
        control_manifest=cfg.cycle.control_manifest or None,
    )


def preflight(inputs: CycleInputs, cfg: FlywheelConfig) -> StartingPoint:
    """The flow's own input checks, run by `flywheel cycle` before Prefect starts: bad input then exits 2 with its
    message alone, instead of a flow run that Prefect reports with a traceback. The same functions the flow runs
    (`version_to_cycle` is what its validate task runs, `checked_start` what it calls), nothing new."""
    version_to_cycle(inputs.manifest, cfg)
    if inputs.control_manifest:
        version_to_cycle(inputs.control_manifest, cfg)
    return checked_start(cfg, inputs.workspace, inputs.base_model, inputs.backend)


def checked_start(cfg: FlywheelConfig, ws: Workspace, base_model: str, backend: str | None) -> StartingPoint:
    """The model the cycle will start from, checked before the version is claimed or any model is scored: the
    model itself (a missing file, a damaged archive), a base that is evaluate-only (its catalogue entry refuses
    SFT, with or without a trainer installed for it), and `[hyperparameters]` against the backend that will train
    it (a mistyped key fails with its file and line, not after an hour of baseline scoring)."""
    proposed = Registry(ws.registry_dir).starting_point(base_model, backend)
    require_model(proposed.model)
    if cfg.cycle.boost != "off":  # `[cycle] boost` needs a transcriber that can boost: refused before any scoring
        require_boosting(proposed.model, proposed.backend)
    plugins = Plugins()
    entry = plugins.base_model(proposed.model)
    if entry is not None:
        check_sft_request(proposed.model, entry.decoder, "sft", entry)
        check_hyperparameters(cfg, entry.backend)
        return proposed
    name = training_backend(proposed, plugins)
    if name is not None:
        described = plugins.trainer(name).describe(proposed.model)  # opens the archive: a broken file is named
        check_sft_request(proposed.model, described.decoder, "sft", described)
        check_hyperparameters(cfg, name)
    return proposed


def training_backend(start: StartingPoint, plugins: Plugins | None = None) -> str | None:
    """The trainer backend for `start`: its own, a catalogue entry's, or the one that claims the file; None when
    no backend recognises it (the model check in `CycleRun.begin` then says what is wrong)."""
    if start.backend:
        return start.backend
    plugins = plugins or Plugins()
    entry = plugins.base_model(start.model)
    if entry is not None:
        return entry.backend
    return next((name for name, t in plugins.trainers().items() if t.claims(start.model)), None)


def run_cycle(run: CycleRun) -> CycleOutcome:
    """The steps of a claimed cycle, in order; each is skipped if an earlier run of this cycle finished it."""
    n, c, cfg, start, label = run.cycle.number, run.cycle, run.cfg, run.start, run.the_label
    baseline = run.step("baseline", ScoreRecord, lambda: run.score(start.model, run.ref, c.baseline_dir, n, SCOPE_ALL))
    artifacts.publish_score(label, artifacts.BASELINE, baseline)
    verdict = run.step(
        "gate",
        GateRecord,
        lambda: tasks.gate(
            metrics_path=baseline.metrics,
            out_dir=str(c.path),
            cfg=cfg,
            history=run.ws.history("gate.json", exclude=c),
            force_reason=run.force_reason,
        ),
    )
    artifacts.publish_gate(label, verdict)
    run.seen["gate"] = verdict
    if not verdict.proceed:
        get_run_logger().info("gate: %s. %s", verdict.outcome, verdict.reason)
        return CycleOutcome("stopped-at-gate", n, verdict.outcome)
    held = run.step("split", SplitRecord, lambda: tasks.split(ref=run.ref, out_dir=str(c.split_dir), cfg=cfg))
    trained_split = trained_on(held)
    boosted = boosting(run, held, baseline, trained_split) if cfg.cycle.boost != "off" else None
    if boosted is not None and boosted.keep and cfg.cycle.boost == "first":
        return settle_boost(run, boosted)  # the cheap lever was enough: no training
    trained = run.step(
        "train", TrainRecord, lambda: tasks.train(cycle=c, start=start, cfg=cfg, run_name=label.run_name)
    )
    control = run.control(trained)
    rescored = run.step(
        "rescore",
        ScoreRecord,
        lambda: run.score_heldout(trained.model, held, c.after_dir, SCOPE_HELDOUT, baseline, trained_split, control),
    )
    artifacts.publish_score(label, artifacts.HELDOUT, rescored)
    tried = [f"Boosting alone (starting model + the manifest's terms): {boosted.summary()}."] if boosted else []
    decision = run.step(
        "decide",
        DecisionRecord,
        lambda: tasks.decide(
            before_metrics=baseline.metrics,
            after_metrics=rescored.metrics,
            out_dir=str(c.path),
            cfg=cfg,
            history=run.ws.history("decision.json", exclude=c),
            control=control,
            notes=tried,
        ),
    )
    boost = None
    if cfg.cycle.boost == "always":
        decision, boost = better_boosted(run, trained, held, baseline, trained_split, decision, tried)
    artifacts.publish_decision(label, decision)
    run.seen["decision"] = decision
    run.chart()
    registered = run.step(
        "register",
        Registration,
        lambda: tasks.register(
            registry_dir=str(run.ws.registry_dir),
            cycle=n,
            trained=trained,
            start=start,
            manifest=run.ref,
            decision=decision,
            boost=boost,
        ),
    )
    if run.turn is not None:  # a candidate waiting for approval must not hold up the next cycle
        run.turn.release()
    return settle(run, trained, decision, registered, boost)


@dataclass
class CycleRun:
    """A claimed cycle being run: its directory, workspace, configuration and inputs, and how steps resume."""

    cycle: CycleDir
    ws: Workspace
    cfg: FlywheelConfig
    ref: ManifestRef
    deployer: str
    force_reason: str | None
    #: The control manifest's version (validated with the cycle's inputs, before any compute), if configured.
    control_ref: ManifestRef | None = None
    label: artifacts.CycleLabel | None = None
    #: The workspace's one-cycle-at-a-time lock, released once the candidate is registered.
    turn: Turn | None = None
    start: StartingPoint = field(init=False)
    #: The records the outcome artifact quotes (gate, decision, control, deploy), as the steps produce them.
    seen: dict = field(default_factory=dict)

    @property
    def the_label(self) -> artifacts.CycleLabel:
        return self.label or artifacts.CycleLabel.of(self.cfg.cycle.name, self.ws.root, self.cycle.number)

    def begin(self, proposed: StartingPoint, **event) -> None:
        require_model(proposed.model)  # a typo in --base is reported before anything is recorded
        self.start, discarded = self.cycle.starting_point(proposed)
        if discarded:
            get_run_logger().warning(
                "cycle %s restarts from %s: the steps finished for the previous starting model were discarded",
                self.cycle.number,
                self.start.model,
            )
        self.cycle.update_record(
            status="running",
            manifest=self.ref.path,
            manifest_version=self.ref.version,
            rows=self.ref.rows,
            **event,
        )

    def step(self, name: str, kind: type[R], compute: Callable[[], R]) -> R:
        """Run a step (`compute`) unless the cycle record says it finished (and its files still exist)."""
        done = self.cycle.step(name)
        if done:
            record = kind.from_dict(done)
            if record.files_exist():
                get_run_logger().info(
                    "step %s finished in an earlier run of cycle %s: reusing it", name, self.cycle.number
                )
                return record
        self.cycle.start_step(name)
        record = compute()
        self.cycle.finish_step(name, record.to_dict())
        return record

    def score(
        self, model: str, ref: ManifestRef, out, number: int, scope: str, boost: BoostList | None = None, **kw
    ) -> ScoreRecord:
        """Transcribe `ref`'s rows with `model` (decoding with `boost`, if given) in shards on the flow's task
        runner, then score them."""
        cfg = self.cfg
        hyps = tasks.transcribe_sharded(
            model_ref=model,
            backend=self.start.backend,
            audio_paths=ref.load(cfg).audio_paths,
            shard_size=cfg.cycle.shard_size,
            batch_size=cfg.cycle.batch_size,
            label=f"cycle {self.cycle.number} ({scope})",
            boost=boost,
        )
        kw.setdefault("family", self.ref.path)
        ref_boost = boost.ref if boost is not None else None
        return tasks.score(
            out=str(out), ref=ref, hyps=hyps, model_ref=model, cfg=cfg, cycle=number, scope=scope, boost=ref_boost, **kw
        )

    def score_heldout(
        self,
        model: str,
        held: SplitRecord,
        out: Path,
        scope: str,
        baseline: ScoreRecord,
        split: SplitInfo,
        control: ControlCheck | None,
        boost: BoostList | None = None,
    ) -> ScoreRecord:
        """`model` (with `boost`, if given) on the held-out rows, compared with the baseline, seen and unseen terms
        and voices apart, the control guard in its leaderboard: the re-score, and the boost lever's scorings."""
        return self.score(
            model,
            held.held_out,
            out,
            self.cycle.number + 1,
            scope,
            boost=boost,
            before_metrics=baseline.metrics,
            seen_terms=split.seen_terms,
            train_audio=split.train_audio,
            seen_voices=split.seen_voices,
            control=control,
        )

    def control(self, trained: TrainRecord) -> ControlCheck | None:
        """The control-set guard (`[cycle] control_manifest`): general-English WER of the starting model and of
        the candidate. None when no control manifest is configured."""
        ref = self.control_ref
        if ref is None:
            return None
        from asr_flywheel.control import control_check
        from asr_flywheel.metrics_record import load_metrics

        n = self.cycle.number
        before = self.step("control_before", ScoreRecord, lambda: self.control_score(self.start.model, ref, n))
        after = self.step("control_after", ScoreRecord, lambda: self.control_score(trained.model, ref, n + 1))
        check = control_check(load_metrics(before.metrics), load_metrics(after.metrics), self.cfg.decision)
        self.cycle.update_record(control=check.to_dict())
        artifacts.publish_control(self.the_label, check, before, after)
        self.seen["control"] = check
        return check

    def control_score(self, model: str, ref: ManifestRef, number: int, boost: BoostList | None = None) -> ScoreRecord:
        """`model`'s score on the control set (decoding with `boost`, if given), from the workspace's cache when an
        earlier cycle scored it (a champion's control score was its own cycle's "after")."""
        out = self.ws.control_dir(model, ref.version, boost.hash if boost is not None else None)
        cached = out / CONTROL_RECORD
        if cached.is_file():
            record = ScoreRecord.from_dict(fio.read_json(cached))
            if record.files_exist():
                get_run_logger().info("control set: reusing the score of %s from %s", model, out)
                return record
        record = self.score(model, ref, out, number, SCOPE_CONTROL, boost=boost, family=ref.path)
        fio.write_json(cached, record.to_dict())
        return record

    def chart(self) -> None:
        """KER per category across cycles, as a PNG in the workspace and an artifact on the run page."""
        png = update_chart(self.ws, self.cycle.number)
        if png is not None:
            artifacts.publish_chart(self.the_label, png)


def record_failure(cycle: CycleDir, exc: BaseException) -> None:
    """A cycle that stops for any reason says so in `cycle.json` (never "running" forever): the reason, and which
    steps were under way. A rerun of the same version resumes it (the GPU slot was released by its own block)."""
    from asr_flywheel.cycle import now
    from asr_flywheel.secrets import redact

    signum = getattr(exc, "signum", None) or getattr(exc, "signal", None)  # Interrupted, Prefect's TerminationSignal
    if isinstance(exc, KeyboardInterrupt):
        signum = signal.SIGINT
    if isinstance(signum, int):
        reason = f"interrupted by {signal.Signals(signum).name}"
    else:
        reason = redact(f"{type(exc).__name__}: {exc}".strip().splitlines()[0] if str(exc) else type(exc).__name__)
    with contextlib.suppress(Exception):  # a full disk must not hide the original error
        record = cycle.read_record()
        cycle.update_record(
            status="failed",
            reason=reason,
            failed_at=now(),
            failed_steps=sorted(record.get("running", {})),
            running={},
        )


def outcome_details(run: CycleRun) -> list[str]:
    """The reason and the numbers behind an outcome, for its artifact: the gate's reason, or the targeted KER
    before → after with its CI and the decision's reason, the control guard, and the deploy."""
    lines = []
    gate: GateRecord | None = run.seen.get("gate")
    decision: DecisionRecord | None = run.seen.get("decision")
    if gate is not None:
        lines.append(f"Gate {gate.outcome}: {gate.reason}")
    if decision is not None:
        from asr_flywheel.decision import DecisionResult

        result = DecisionResult.from_dict(fio.read_json(decision.decision_json))
        ci = "" if result.ci_low is None else f", 95% CI of the change {result.ci_low:+.3f} to {result.ci_high:+.3f}"
        lines.append(f"Decision {decision.decision}: {decision.reason}")
        lines.append(
            f"Targeted KER ({', '.join(result.targets)}): {result.ker_before:.3f} → {result.ker_after:.3f} "
            f"(n={result.n_targeted}{ci})"
        )
        unseen = (result.unseen or {}).get("all")
        if unseen:
            lines.append(f"Unseen terms: KER {unseen['ker_before']:.3f} → {unseen['ker_after']:.3f} (n={unseen['n']})")
        voices = (result.unseen_voices or {}).get("all")
        if voices:
            lines.append(f"Unseen voices: KER {voices['ker_before']:.3f} → {voices['ker_after']:.3f} (n={voices['n']})")
    check: ControlCheck | None = run.seen.get("control")
    if check is not None:
        lines.append(f"Control set: {check.sentence()}")
    deployed = run.seen.get("deploy")
    if deployed is not None:
        lines.append(f"Deploy: {deployed.reason}")
    return lines


def finish(label: artifacts.CycleLabel, outcome: CycleOutcome, run_id: str, details: list[str] | None = None):
    """The outcome on the run page (artifact, tags, state message); the caller gets the `CycleOutcome`."""
    artifacts.publish_outcome(label, outcome, run_id=run_id, details=details)
    get_run_logger().info(outcome.summary())
    return Completed(message=outcome.summary(), data=outcome)


def load_secret_blocks() -> None:
    """Fill missing secret env vars from Prefect Secret blocks (values are never logged or passed as parameters)."""
    missing = {env: block for env, block in SECRET_ENV_VARS.items() if not os.environ.get(env)}
    if not missing:
        return
    from prefect.blocks.system import Secret

    for env, block in missing.items():
        try:
            os.environ[env] = Secret.load(block).get()
        except (ValueError, KeyError):  # no such block: a backend that needs the secret says so clearly
            continue
