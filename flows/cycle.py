"""`flywheel_cycle`: one turn of the flywheel as a Prefect flow.

validate → claim the manifest version → score the champion (or base) → gate → split → train (GPU lock)
→ re-score held-out rows → decide → register → (approve →) deploy

Each step is a task whose outputs are files in the cycle directory; the cycle record (`cycle.json`) marks
finished steps, so re-running a failed or killed cycle resumes after the last finished step and never redoes
training that finished. Results are also persisted by Prefect (retries of a flow run reuse them). Bad input
fails fast and is never retried; only transient I/O/network errors are.
"""

from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import (
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)
from prefect.context import get_run_context
from prefect.input import RunInput

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.cycle import CycleDir, Workspace, now
from asr_flywheel.decision import decide, render_decision
from asr_flywheel.errors import FlywheelError
from asr_flywheel.gate import evaluate_gate, history_records, is_first_eval, render_gate
from asr_flywheel.leaderboard import render_comparison, render_leaderboard
from asr_flywheel.registry import Registry
from asr_flywheel.scoring import load_per_sample, score_manifest, write_score_outputs
from asr_flywheel.secrets import SECRET_ENV_VARS
from asr_flywheel.split import split_manifest, write_split
from asr_flywheel.validation import load_manifest, validate_manifest
from flows import steps

_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED}


def transient_only(task, task_run, state) -> bool:
    """Retry condition: network/I-O hiccups only. Bad input (FlywheelError) and bugs are never retried."""
    try:
        state.result()
    except FlywheelError:
        return False
    except (ConnectionError, TimeoutError):
        return True
    except OSError as exc:
        return exc.errno in _TRANSIENT_ERRNOS
    except Exception:
        return False
    return False


STEP = dict(persist_result=True, retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only)


def artifact_key(*parts: object) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    raw = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isalnum() and c.isascii() else "-" for c in raw).strip("-")


def _resumable(cycle: CycleDir, name: str, fn, *args, **kwargs) -> dict:
    """Run a step unless the cycle record says it finished and its files still exist."""
    done = cycle.step(name)
    if done and all(Path(p).exists() for p in done.get("files", [])):
        get_run_logger().info("step %s finished in an earlier run of cycle %s; reusing its outputs", name, cycle.number)
        return done
    cycle.start_step(name)
    result = fn(*args, **kwargs)
    cycle.finish_step(name, result)
    return result


# --- tasks ----------------------------------------------------------------------------------------------------


@task(name="validate-manifest")
def validate(manifest: str, config: FlywheelConfig) -> dict:
    report = validate_manifest(manifest, config)
    m = report.raise_if_invalid()
    return {"manifest": str(Path(manifest).resolve()), "version": m.version, "rows": len(m)}


@task(name="transcribe-shard", **STEP)
def transcribe_shard(model_ref: str, backend: str | None, audio_paths: list[str], batch_size: int) -> list[str]:
    model = steps.load_model(model_ref, backend)
    return model.transcribe(audio_paths, batch_size=batch_size)


def transcribe_sharded(
    model_ref: str, backend: str | None, audio_paths: list[str], cfg: FlywheelConfig, label: str
) -> list[str]:
    """Shard transcription into tasks on the flow's task runner, with a progress artifact."""
    size = max(1, cfg.cycle.shard_size)
    shards = [audio_paths[i : i + size] for i in range(0, len(audio_paths), size)]
    progress = create_progress_artifact(progress=0.0, description=f"{label}: transcribing {len(audio_paths)} rows")
    futures = [transcribe_shard.submit(model_ref, backend, shard, cfg.cycle.batch_size) for shard in shards]
    hyps: list[str] = []
    for i, fut in enumerate(futures, 1):
        hyps += fut.result()
        update_progress_artifact(artifact_id=progress, progress=100.0 * i / len(futures))
    return hyps


@task(name="score", **STEP)
def score_step(
    cycle: CycleDir,
    out: Path,
    manifest_path: str,
    model_ref: str,
    backend: str | None,
    cfg: FlywheelConfig,
    number: int,
    scope: str,
    family: str,
    before_metrics: str | None = None,
) -> dict:
    manifest = load_manifest(manifest_path, cfg, check_audio=False)
    hyps = transcribe_sharded(model_ref, backend, manifest.audio_paths, cfg, f"cycle {number}")
    steps.write_hyps(out / steps.OFFLINE_HYPS, manifest, hyps)
    report = score_manifest(manifest, hyps, config=cfg, model_name=model_ref, cycle=number, scope=scope, family=family)
    paths = write_score_outputs(report, out, leaderboard=False)
    comparison = None
    if before_metrics:
        from asr_flywheel.compare import compare_samples

        comparison = compare_samples(
            load_per_sample(before_metrics),
            load_per_sample(paths["metrics"]),
            cfg.stats,
            before_label=f"cycle {number - 1}",
            after_label=f"cycle {number}",
            pools={"targeted": cfg.decision_targets},
        )
    md = render_leaderboard(report.metrics, gate=cfg.gate, comparison=comparison)
    board = fio.write_text(out / f"leaderboard_cycle{number}.md", md)
    create_markdown_artifact(
        key=artifact_key("leaderboard-cycle", number),
        markdown=md,
        description=f"Leaderboard, cycle {number} ({scope}), model {model_ref}",
    )
    if comparison is not None:
        create_markdown_artifact(
            key=artifact_key("comparison-cycle", number),
            markdown=render_comparison(comparison),
            description=f"Cycle {number - 1} → {number}, held-out rows",
        )
    create_table_artifact(
        key=artifact_key("ker-by-category-cycle", number),
        table=[
            {
                "category": k,
                **{f: round(v[f], 4) if isinstance(v[f], float) else v[f] for f in ("ker", "n", "ci_low", "ci_high")},
            }
            for k, v in report.metrics["ker_by_entity_category"].items()
        ],
        description=f"KER by entity category, cycle {number}",
    )
    files = [str(p) for p in (*paths.values(), board, out / steps.OFFLINE_HYPS)]
    return {
        "metrics": str(paths["metrics"]),
        "leaderboard": str(board),
        "files": files,
        "ker": report.metrics["ker"],
        "n": report.metrics["n"],
    }


@task(name="gate", **STEP)
def gate_step(cycle: CycleDir, ws: Workspace, metrics_path: str, cfg: FlywheelConfig, force_reason: str | None) -> dict:
    from asr_flywheel.scoring import load_metrics

    metrics = load_metrics(metrics_path)
    history = [h for h in history_records(ws.cycles_dir, "gate.json") if Path(h["_path"]).parent != cycle.path]
    result = evaluate_gate(metrics, cfg.gate, first_eval=is_first_eval(history, metrics))
    if force_reason:
        result = result.force(force_reason)
    gate_json = fio.write_json(cycle.path / "gate.json", result.to_dict())
    md = render_gate(result)
    fio.write_text(cycle.path / "gate.md", md)
    create_markdown_artifact(
        key=artifact_key("gate-cycle", cycle.number), markdown=md, description=f"Gate: {result.outcome}"
    )
    create_table_artifact(
        key=artifact_key("gate-table-cycle", cycle.number),
        table=[
            {
                "outcome": str(result.outcome),
                "priority_ker": result.priority_ker,
                "priority_n": result.priority_n,
                "rows": result.rows,
                "first_eval": result.first_eval,
                "proceed": result.proceed,
                "forced": result.forced,
            }
        ],
    )
    return {
        "outcome": str(result.outcome),
        "proceed": result.proceed,
        "reason": result.reason,
        "files": [str(gate_json)],
    }


@task(name="split", **STEP)
def split_step(cycle: CycleDir, manifest_path: str, cfg: FlywheelConfig) -> dict:
    report = validate_manifest(manifest_path, cfg)
    manifest = report.raise_if_invalid()
    result = split_manifest(manifest, cfg.split, cfg.gate.priority, min_priority_rows=cfg.gate.min_priority_rows)
    for w in result.warnings:
        get_run_logger().warning(w)
    paths = write_split(manifest, result, cfg.split, cycle.split_dir, {a: i.duration for a, i in report.audio.items()})
    return {
        "dir": str(cycle.split_dir),
        "validation": str(paths["validation"]),
        "train_rows": len(result.train),
        "validation_rows": len(result.validation),
        "files": [str(p) for p in paths.values()],
    }


def ensure_gpu_slot(name: str) -> None:
    """Create the global concurrency limit (limit 1) if it is missing: strict mode refuses unknown limits."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@task(name="train", **{**STEP, "retries": 0})
def train_step(cycle: CycleDir, base: str, backend: str | None, cfg: FlywheelConfig, hyperparameters: dict) -> dict:
    from prefect.concurrency.sync import concurrency

    progress = create_progress_artifact(progress=0.0, description=f"cycle {cycle.number}: training {base}")

    def report(done: int, total: int) -> None:
        update_progress_artifact(artifact_id=progress, progress=100.0 * done / max(total, 1))

    ensure_gpu_slot(cfg.cycle.gpu_slot)
    devices: int | str = int(cfg.cycle.devices) if cfg.cycle.devices.isdigit() else cfg.cycle.devices
    with concurrency(cfg.cycle.gpu_slot, occupy=1, strict=True):
        cycle.update_record(gpu_acquired_at=now())
        result = steps.train(
            cycle.split_dir,
            base,
            cycle.model_dir,
            backend=backend,
            hyperparameters=hyperparameters,
            config=cfg,
            devices=devices,
            num_nodes=cfg.cycle.num_nodes,
            strategy=cfg.cycle.strategy,
            progress=report,
        )
        cycle.update_record(gpu_released_at=now())
    update_progress_artifact(artifact_id=progress, progress=100.0)
    files = [str(result.model_path), str(result.run_info_path)]
    if result.container_command:
        files.append(str(fio.write_text(cycle.model_dir / "container_command.sh", result.container_command + "\n")))
    return {"model": str(result.model_path), "run_info": str(result.run_info_path), "files": files}


@task(name="decide", **STEP)
def decide_step(cycle: CycleDir, ws: Workspace, before: str, after: str, cfg: FlywheelConfig, family: str) -> dict:
    history = [h for h in history_records(ws.cycles_dir, "decision.json") if Path(h["_path"]).parent != cycle.path]
    result, _ = decide(
        load_per_sample(before),
        load_per_sample(after),
        cfg.decision,
        cfg.stats,
        targets=cfg.decision_targets,
        history=history,
        cycle=cycle.number + 1,
        manifest_family=family,
    )
    path = fio.write_json(cycle.path / "decision.json", result.to_dict())
    md = render_decision(result)
    fio.write_text(cycle.path / "decision.md", md)
    create_markdown_artifact(
        key=artifact_key("decision-cycle", cycle.number), markdown=md, description=f"Decision: {result.decision}"
    )
    create_table_artifact(
        key=artifact_key("decision-table-cycle", cycle.number),
        table=[
            {
                "category": r["category"],
                "n": r["n"],
                "ker_before": round(r["ker_before"], 4),
                "ker_after": round(r["ker_after"], 4),
                "delta": round(r["delta"], 4),
            }
            for r in result.per_category
        ],
    )
    return {
        "decision": str(result.decision),
        "keep": result.keep,
        "reason": result.reason,
        "relative_change": result.relative_change,
        "files": [str(path)],
    }


@task(name="register", **STEP)
def register_step(
    cycle: CycleDir,
    ws: Workspace,
    trained: dict,
    base: str,
    backend: str | None,
    info: dict,
    decision: dict,
    family: str,
    parent: str | None,
) -> dict:
    run_info = fio.read_json(trained["run_info"])
    reg = Registry(ws.registry_dir)
    rec = reg.register(
        path=trained["model"],
        backend=run_info.get("backend", backend or ""),
        base_model=base,
        parent=parent,
        manifest_version=info["version"],
        manifest_family=family,
        cycle=cycle.number,
        hyperparameters=run_info.get("hyperparameters", {}),
        metrics=run_info.get("metrics", {}),
        decision=decision["decision"],
        architecture=run_info.get("architecture"),
    )
    if decision["keep"]:
        reg.promote(rec.model_id, f"KEEP in cycle {cycle.number}: {decision['reason']}")
    return {"model_id": rec.model_id, "champion": decision["keep"], "files": [str(reg.path)]}


class DeployApproval(RunInput):
    """Typed input shown in the Prefect UI when a deploy waits for a human."""

    approve: bool = False
    reason: str = ""


@task(name="deploy", **STEP)
def deploy_step(cycle: CycleDir, model_path: str, deployer: str, decoder: str) -> dict:
    from plugins.contracts import Decoder
    from plugins.manager import Plugins

    out = cycle.path / "deploy"
    record = Plugins().deployer(deployer).deploy(model_path, decoder=Decoder(decoder), out_dir=out)
    path = fio.write_json(cycle.path / "deploy.json", record.__dict__)
    create_markdown_artifact(
        key=artifact_key("deploy-cycle", cycle.number),
        markdown=f"# Deployed with {deployer}\n\n```json\n{fio.dumps_json(record.__dict__).decode()}```",
    )
    return {"deployer": deployer, "endpoint": record.endpoint, "version": record.version, "files": [str(path)]}


# --- the flow -------------------------------------------------------------------------------------------------


def _load_secret_blocks() -> None:
    """Fill secret env vars from Prefect Secret blocks when the environment lacks them (values never logged)."""
    missing = {env: block for env, block in SECRET_ENV_VARS.items() if not os.environ.get(env)}
    if not missing:
        return
    try:
        from prefect.blocks.system import Secret
    except ImportError:  # pragma: no cover
        return
    for env, block in missing.items():
        try:
            os.environ[env] = Secret.load(block).get()
        except Exception:  # no such block: the backend reports a clear error if it needs the secret
            continue


@flow(name="flywheel-cycle", log_prints=True)
def flywheel_cycle(
    manifest: str,
    base_model: str | None = None,
    backend: str | None = None,
    workspace: str | None = None,
    config_path: str | None = None,
    rows: int = 0,
    added_rows: int = 0,
    content_hash: str = "",
    force_finetune_reason: str | None = None,
    deploy: bool | None = None,
) -> dict:
    """One cycle. `rows`/`added_rows`/`content_hash` come from the manifest-growth event (informational: the
    manifest is re-hashed here, and the version actually read is the one recorded)."""
    log = get_run_logger()
    cfg = load_config(config_path)
    ws = Workspace(workspace or cfg.workspace)
    _load_secret_blocks()
    info = validate(manifest, cfg)
    if content_hash and content_hash != info["version"]:
        log.warning(
            "manifest changed since the event (event %s…, now %s…): cycling the current version",
            content_hash[:12],
            info["version"][:12],
        )
    run_id = str(getattr(get_run_context().flow_run, "id", ""))
    claim = ws.claim_version(info["version"], info["manifest"], flow_run_id=run_id)
    cycle = claim.cycle
    if claim.status == "done":
        log.info(
            "manifest version %s… was already cycled in cycle %s: nothing to do", info["version"][:12], cycle.number
        )
        return {"status": "duplicate", "cycle": cycle.number, "outcome": cycle.read_record().get("outcome")}
    family = info["manifest"]
    with cycle.lock():
        cycle.update_record(
            status="running",
            manifest=info["manifest"],
            manifest_version=info["version"],
            rows=info["rows"],
            event_rows=rows,
            event_added_rows=added_rows,
            flow_run_id=run_id,
        )
        registry = Registry(ws.registry_dir)
        champion = registry.champion()
        start_model = champion.path if champion else (base_model or cfg.cycle.base_model)
        start_backend = (champion.backend if champion else None) or backend or cfg.cycle.backend or None
        n = cycle.number

        baseline = _resumable(
            cycle,
            "baseline",
            score_step,
            cycle,
            cycle.baseline_dir,
            info["manifest"],
            start_model,
            start_backend,
            cfg,
            n,
            "all rows",
            family,
        )
        gate = _resumable(cycle, "gate", gate_step, cycle, ws, baseline["metrics"], cfg, force_finetune_reason)
        if not gate["proceed"]:
            cycle.update_record(status="complete", outcome=gate["outcome"])
            log.info("gate: %s — %s", gate["outcome"], gate["reason"])
            return {"status": "stopped-at-gate", "cycle": n, "outcome": gate["outcome"]}

        split = _resumable(cycle, "split", split_step, cycle, info["manifest"], cfg)
        trained = _resumable(
            cycle, "train", train_step, cycle, start_model, start_backend, cfg, dict(cfg.hyperparameters)
        )
        after = _resumable(
            cycle,
            "rescore",
            score_step,
            cycle,
            cycle.after_dir,
            split["validation"],
            trained["model"],
            start_backend,
            cfg,
            n + 1,
            "held-out (validation) rows",
            family,
            baseline["metrics"],
        )
        decision = _resumable(
            cycle, "decide", decide_step, cycle, ws, baseline["metrics"], after["metrics"], cfg, family
        )
        registered = _resumable(
            cycle,
            "register",
            register_step,
            cycle,
            ws,
            trained,
            start_model,
            start_backend,
            info,
            decision,
            family,
            champion.model_id if champion else None,
        )

        deployer = cfg.cycle.deployer if deploy is None or deploy else ""
        deployed = None
        if decision["keep"] and deployer:
            deployed = _approve_and_deploy(cycle, cfg, trained, deployer)
        cycle.update_record(status="complete", outcome=decision["decision"])
        steps.release_models()
        return {
            "status": "complete",
            "cycle": n,
            "outcome": decision["decision"],
            "model_id": registered["model_id"],
            "deployed": bool(deployed),
        }


def _approve_and_deploy(cycle: CycleDir, cfg: FlywheelConfig, trained: dict, deployer: str) -> dict | None:
    from prefect.flow_runs import pause_flow_run

    log = get_run_logger()
    if cfg.cycle.require_approval and not cycle.step("approval"):
        decision_md = (cycle.path / "decision.md").read_text()
        answer = pause_flow_run(
            wait_for_input=DeployApproval.with_initial_data(description=decision_md, approve=False),
            timeout=cfg.cycle.approval_timeout_s,
        )
        cycle.finish_step("approval", {"approve": answer.approve, "reason": answer.reason, "files": []})
        if not answer.approve:
            log.info("deploy not approved: %s", answer.reason or "(no reason given)")
            return None
    run_info = fio.read_json(trained["run_info"])
    return _resumable(
        cycle, "deploy", deploy_step, cycle, trained["model"], deployer, run_info["architecture"]["decoder"]
    )
