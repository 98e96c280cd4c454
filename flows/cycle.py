"""`flywheel_cycle`: one turn of the flywheel as a Prefect flow.

validate → claim the manifest version → score the champion (or base) → gate → split → train (GPU lock)
→ re-score held-out rows → decide → register → (approve →) deploy

Each task wraps one step from `flows.steps` (where the work happens, also used by the CLI) and adds what Prefect
is for: artifacts in the UI, progress, retries of transient failures. Outputs are files in the cycle directory;
`cycle.json` marks finished steps, so re-running a failed or killed cycle resumes after the last finished step
and never redoes training that finished. Bad input fails fast and is never retried.
"""

from __future__ import annotations

import errno
import os
import time
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
from asr_flywheel.cycle import CycleDir, Workspace
from asr_flywheel.errors import FlywheelError
from asr_flywheel.flows import steps
from asr_flywheel.flows.runners import task_runner_from_env
from asr_flywheel.registry import Registry
from asr_flywheel.secrets import SECRET_ENV_VARS
from asr_flywheel.validation import load_manifest_version, validate_manifest

_TRANSIENT_ERRNOS = {errno.EIO, errno.EAGAIN, errno.EBUSY, errno.ETIMEDOUT, errno.ECONNRESET, errno.ECONNREFUSED}


def transient_only(task, task_run, state) -> bool:
    """Retry condition: network and I/O hiccups only. Bad input (FlywheelError) and bugs are never retried."""
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


RETRY = dict(retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only)


def artifact_key(*parts: object) -> str:
    """Prefect artifact keys allow only lowercase letters, digits and dashes."""
    raw = "-".join(str(p) for p in parts).lower()
    return "".join(c if c.isascii() and c.isalnum() else "-" for c in raw).strip("-")


def resumable(cycle: CycleDir, name: str, fn, *args, **kwargs) -> dict:
    """Run a step unless the cycle record says it finished (and its files still exist)."""
    done = cycle.step(name)
    if done and all(Path(p).exists() for p in done.get("files", [])):
        get_run_logger().info("step %s finished in an earlier run of cycle %s: reusing it", name, cycle.number)
        return done
    cycle.start_step(name)
    result = fn(*args, **kwargs)
    cycle.finish_step(name, result)
    return result


# --- tasks ----------------------------------------------------------------------------------------------------


@task(name="validate-manifest")
def validate(manifest: str, config: FlywheelConfig, content_hash: str = "", rows: int = 0) -> steps.ManifestRef:
    """The version to cycle: the one the event announced when the file still holds it (manifests only grow by
    appending, so its first `rows` rows are that version), else the file's current content."""
    path = str(Path(manifest).resolve())
    report = validate_manifest(path, config)
    current = report.manifest
    if content_hash and content_hash != current.version and 0 < rows <= len(current):
        try:
            load_manifest_version(path, content_hash, rows, config)
            return steps.ManifestRef(path, content_hash, rows)
        except FlywheelError as exc:
            get_run_logger().warning(
                "announced version %s… is not in the file any more (%s): cycling the current content",
                content_hash[:12],
                exc,
            )
    report.raise_if_invalid()
    return steps.ManifestRef(path, current.version, len(current))


@task(name="transcribe-shard", **RETRY)
def transcribe_shard(model_ref: str, backend: str | None, audio_paths: list[str], batch_size: int) -> list[str]:
    return steps.load_model(model_ref, backend).transcribe(audio_paths, batch_size=batch_size)


def transcribe_sharded(
    model_ref: str, backend: str | None, audio_paths: list[str], cfg: FlywheelConfig, label: str
) -> list[str]:
    """Shard transcription into tasks on the flow's task runner (threads locally, Dask/Ray on a cluster)."""
    size = max(1, cfg.cycle.shard_size)
    shards = [audio_paths[i : i + size] for i in range(0, len(audio_paths), size)]
    progress = create_progress_artifact(progress=0.0, description=f"{label}: transcribing {len(audio_paths)} rows")
    futures = [transcribe_shard.submit(model_ref, backend, shard, cfg.cycle.batch_size) for shard in shards]
    hyps: list[str] = []
    for i, fut in enumerate(futures, 1):
        hyps += fut.result()
        update_progress_artifact(artifact_id=progress, progress=100.0 * i / len(futures))
    return hyps


@task(name="score", persist_result=True, **RETRY)
def score(
    out: Path,
    ref: steps.ManifestRef,
    model_ref: str,
    backend: str | None,
    cfg: FlywheelConfig,
    number: int,
    scope: str,
    family: str,
    before_metrics: str | None = None,
) -> dict:
    manifest = ref.load(cfg)
    hyps = transcribe_sharded(model_ref, backend, manifest.audio_paths, cfg, f"cycle {number}")
    result = steps.score_rows_to_dir(out, manifest, hyps, model_ref, cfg, number, scope, family, before_metrics)
    create_markdown_artifact(
        key=artifact_key("leaderboard-cycle", number),
        markdown=result["leaderboard_md"],
        description=f"Leaderboard, cycle {number} ({scope}), model {model_ref}",
    )
    if result["comparison_md"]:
        create_markdown_artifact(
            key=artifact_key("comparison-cycle", number),
            markdown=result["comparison_md"],
            description=f"Cycle {number - 1} → {number} on held-out rows",
        )
    create_table_artifact(
        key=artifact_key("ker-by-category-cycle", number),
        description=f"KER by entity category, cycle {number}",
        table=[
            {
                "category": c,
                "ker": round(v["ker"], 4),
                "n": v["n"],
                "ci_low": round(v["ci_low"], 4),
                "ci_high": round(v["ci_high"], 4),
            }
            for c, v in result["by_category"].items()
        ],
    )
    return result


@task(name="gate", persist_result=True, **RETRY)
def gate(cycle: CycleDir, cycles_dir: Path, metrics_path: str, cfg: FlywheelConfig, force_reason: str | None) -> dict:
    result = steps.gate_cycle(cycle.path, cycles_dir, metrics_path, cfg, force_reason)
    create_markdown_artifact(
        key=artifact_key("gate-cycle", cycle.number),
        markdown=result["markdown"],
        description=f"Gate: {result['outcome']}",
    )
    create_table_artifact(
        key=artifact_key("gate-table-cycle", cycle.number),
        table=[
            {k: result[k] for k in ("outcome", "priority_ker", "priority_n", "rows", "first_eval", "proceed", "forced")}
        ],
    )
    return result


@task(name="split", persist_result=True, **RETRY)
def split(cycle: CycleDir, ref: steps.ManifestRef, cfg: FlywheelConfig) -> dict:
    result = steps.split_cycle(cycle.split_dir, ref, cfg)
    for w in result["warnings"]:
        get_run_logger().warning(w)
    return result


def ensure_gpu_slot(name: str) -> None:
    """Create the global concurrency limit (limit 1) if missing: strict mode refuses unknown limits."""
    import contextlib

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound

    with get_client(sync_client=True) as client:
        try:
            client.read_global_concurrency_limit_by_name(name)
        except ObjectNotFound:
            with contextlib.suppress(ObjectAlreadyExists):
                client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=1))


@task(name="train", persist_result=True)  # never retried automatically: GPU hours are not free
def train(cycle: CycleDir, base: str, backend: str | None, cfg: FlywheelConfig) -> dict:
    from prefect.concurrency.sync import concurrency

    progress = create_progress_artifact(progress=0.0, description=f"cycle {cycle.number}: fine-tuning {base}")

    def report(done: int, total: int) -> None:
        update_progress_artifact(artifact_id=progress, progress=min(100.0, 100.0 * done / max(total, 1)))

    ensure_gpu_slot(cfg.cycle.gpu_slot)
    devices: int | str = int(cfg.cycle.devices) if cfg.cycle.devices.isdigit() else cfg.cycle.devices
    with concurrency(cfg.cycle.gpu_slot, occupy=1, strict=True, lease_duration=cfg.cycle.gpu_lease_s):
        cycle.update_record(gpu_acquired=time.time())
        result = steps.train(
            cycle.split_dir,
            base,
            cycle.model_dir,
            backend=backend,
            hyperparameters=dict(cfg.hyperparameters),
            config=cfg,
            devices=devices,
            num_nodes=cfg.cycle.num_nodes,
            strategy=cfg.cycle.strategy,
            progress=report,
        )
        cycle.update_record(gpu_released=time.time())
    update_progress_artifact(artifact_id=progress, progress=100.0)
    files = [str(result.model_path), str(result.run_info_path)]
    return {"model": str(result.model_path), "run_info": str(result.run_info_path), "files": files}


@task(name="decide", persist_result=True, **RETRY)
def decide(cycle: CycleDir, cycles_dir: Path, before: str, after: str, cfg: FlywheelConfig, family: str) -> dict:
    result = steps.decide_cycle(cycle.path, cycles_dir, cycle.number + 1, before, after, cfg, family)
    create_markdown_artifact(
        key=artifact_key("decision-cycle", cycle.number),
        markdown=result["markdown"],
        description=f"Decision: {result['decision']}",
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
            for r in result["per_category"]
        ],
    )
    return result


@task(name="register", persist_result=True, **RETRY)
def register(
    cycle: CycleDir,
    registry_dir: Path,
    trained: dict,
    base: str,
    backend: str | None,
    version: str,
    family: str,
    decision: dict,
    parent: str | None,
) -> dict:
    return steps.register_cycle(registry_dir, cycle.number, trained, base, backend, version, family, decision, parent)


class DeployApproval(RunInput):
    """Typed input shown in the Prefect UI when a deploy waits for a human."""

    approve: bool = False
    reason: str = ""


@task(name="deploy", persist_result=True, **RETRY)
def deploy(cycle: CycleDir, model_path: str, deployer: str, decoder: str) -> dict:
    from asr_flywheel.plugins.contracts import Decoder
    from asr_flywheel.plugins.manager import Plugins

    record = Plugins().deployer(deployer).deploy(model_path, decoder=Decoder(decoder), out_dir=cycle.path / "deploy")
    path = fio.write_json(cycle.path / "deploy.json", vars(record))
    create_markdown_artifact(
        key=artifact_key("deploy-cycle", cycle.number),
        markdown=f"# Deployed with {deployer}\n\n- endpoint: {record.endpoint}\n"
        f"- version: {record.version}\n- model: `{model_path}`\n",
    )
    return {"deployer": deployer, "endpoint": record.endpoint, "version": record.version, "files": [str(path)]}


# --- the flow -------------------------------------------------------------------------------------------------


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


@flow(name="flywheel-cycle", log_prints=True, task_runner=task_runner_from_env())
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
) -> dict:
    """One cycle of the flywheel on `manifest`. `rows`, `added_rows` and `content_hash` come from the growth event:
    the announced version (the first `rows` rows, hash-checked) is cycled even if the file has grown since."""
    log = get_run_logger()
    cfg = load_config(config_path)
    manifest = manifest or cfg.cycle.manifest
    if not manifest:
        raise FlywheelError("no manifest given and none configured (`[cycle] manifest` in flywheel.toml)")
    if deploy_model and not cfg.cycle.deployer:
        raise FlywheelError("deploying was requested but no deployer is configured (`[cycle] deployer`)")
    ws = Workspace(workspace or cfg.workspace)
    load_secret_blocks()
    ref = validate(manifest, cfg, content_hash, rows)
    run_id = str(get_run_context().flow_run.id)
    claim = ws.claim_version(ref.version, ref.path, rows=ref.rows, flow_run_id=run_id)
    cycle = claim.cycle
    if claim.status == "done":
        log.info("manifest version %s… was already cycled (cycle %s): nothing to do", ref.version[:12], cycle.number)
        return {"status": "duplicate", "cycle": cycle.number, "outcome": cycle.read_record().get("outcome")}

    family = ref.path
    with cycle.lock():
        try:
            return run_cycle(
                cycle,
                ws,
                cfg,
                ref,
                family,
                base_model,
                backend,
                force_finetune_reason,
                deploy_model,
                event={"event_rows": rows, "event_added_rows": added_rows, "flow_run_id": run_id},
            )
        finally:
            steps.release_models()


def run_cycle(
    cycle: CycleDir,
    ws: Workspace,
    cfg: FlywheelConfig,
    ref: steps.ManifestRef,
    family: str,
    base_model: str | None,
    backend: str | None,
    force_finetune_reason: str | None,
    deploy_model: bool | None,
    event: dict,
) -> dict:
    """The steps of a claimed cycle, in order; each is skipped if an earlier run of this cycle finished it."""
    log = get_run_logger()
    n = cycle.number
    start = cycle.read_record().get("start")
    if start is None:  # first run: fix the starting point, so a resumed run never switches models midway
        champion = Registry(ws.registry_dir).champion()
        start = {
            "model": champion.path if champion else (base_model or cfg.cycle.base_model),
            "backend": (champion.backend if champion else None) or backend or cfg.cycle.backend or None,
            "parent": champion.model_id if champion else None,
        }
    cycle.update_record(
        status="running", manifest=ref.path, manifest_version=ref.version, rows=ref.rows, start=start, **event
    )
    model, backend = start["model"], start["backend"]

    baseline = resumable(cycle, "baseline", score, cycle.baseline_dir, ref, model, backend, cfg, n, "all rows", family)
    verdict = resumable(cycle, "gate", gate, cycle, ws.cycles_dir, baseline["metrics"], cfg, force_finetune_reason)
    if not verdict["proceed"]:
        log.info("gate: %s. %s", verdict["outcome"], verdict["reason"])
        cycle.update_record(status="complete", outcome=verdict["outcome"])
        return {"status": "stopped-at-gate", "cycle": n, "outcome": verdict["outcome"]}

    held_out = resumable(cycle, "split", split, cycle, ref, cfg)
    trained = resumable(cycle, "train", train, cycle, model, backend, cfg)
    rescored = resumable(
        cycle,
        "rescore",
        score,
        cycle.after_dir,
        steps.ManifestRef(**held_out["ref"]),
        trained["model"],
        backend,
        cfg,
        n + 1,
        "held-out (validation) rows",
        family,
        baseline["metrics"],
    )
    decision = resumable(
        cycle, "decide", decide, cycle, ws.cycles_dir, baseline["metrics"], rescored["metrics"], cfg, family
    )
    registered = resumable(
        cycle,
        "register",
        register,
        cycle,
        ws.registry_dir,
        trained,
        model,
        backend,
        ref.version,
        family,
        decision,
        start["parent"],
    )
    deployer = cfg.cycle.deployer if deploy_model is None or deploy_model else ""
    deployed = approve_and_deploy(cycle, cfg, trained, deployer) if decision["keep"] and deployer else None

    cycle.update_record(status="complete", outcome=decision["decision"])
    return {
        "status": "complete",
        "cycle": n,
        "outcome": decision["decision"],
        "model_id": registered["model_id"],
        "deployed": bool(deployed),
    }


def approve_and_deploy(cycle: CycleDir, cfg: FlywheelConfig, trained: dict, deployer: str) -> dict | None:
    """Optional human approval (typed input in the UI showing the decision and deltas), then deploy."""
    from prefect.flow_runs import pause_flow_run

    if cfg.cycle.require_approval and not cycle.step("approval"):
        answer = pause_flow_run(
            wait_for_input=DeployApproval.with_initial_data(
                description=(cycle.path / "decision.md").read_text(), approve=False
            ),
            timeout=cfg.cycle.approval_timeout_s,
        )
        cycle.finish_step("approval", {"approve": answer.approve, "reason": answer.reason, "files": []})
        if not answer.approve:
            get_run_logger().info("deploy not approved: %s", answer.reason or "(no reason given)")
            return None
    decoder = fio.read_json(trained["run_info"])["architecture"]["decoder"]
    return resumable(cycle, "deploy", deploy, cycle, trained["model"], deployer, decoder)
