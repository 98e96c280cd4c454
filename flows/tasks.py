"""The cycle's Prefect tasks: each wraps one step of `flows.steps` and adds what Prefect is for (retries of
transient failures, the GPU concurrency slot, progress in the UI). Tasks take keyword arguments only.

No task persists its result: resuming is `cycle.json`'s job (see `flows.cycle`), and Prefect's default cache key
includes the flow run id, so a persisted result would never be found by the next run anyway.
"""

from __future__ import annotations

import errno
import time

from prefect import get_run_logger, task
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.cache_policies import NO_CACHE
from prefect.input import RunInput

from asr_flywheel.boost import BoostList
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import CycleDir, ManifestRef, StartingPoint, version_to_cycle
from asr_flywheel.errors import FlywheelError
from asr_flywheel.flows import steps, transcription
from asr_flywheel.flows.records import (
    ScoreRecord,
    SplitRecord,
    TrainRecord,
)

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


#: No cache policy either: nothing is looked up, so no parameter is hashed.
ONCE = dict(cache_policy=NO_CACHE)
RETRY = dict(retries=2, retry_delay_seconds=5, retry_condition_fn=transient_only, **ONCE)


@task(name="validate-manifest", **ONCE)
def validate(*, manifest: str, cfg: FlywheelConfig, content_hash: str = "", rows: int = 0) -> ManifestRef:
    ref, warning = version_to_cycle(manifest, cfg, content_hash=content_hash, rows=rows)
    if warning:
        get_run_logger().warning(warning)
    return ref


@task(name="transcribe-shard", **RETRY)
def transcribe_shard(
    *, model_ref: str, backend: str | None, audio_paths: list[str], batch_size: int, boost: BoostList | None = None
) -> list[str]:
    return transcription.transcribe_shard(
        model_ref=model_ref, backend=backend, audio_paths=audio_paths, batch_size=batch_size, boost=boost
    )


def transcribe_sharded(
    *,
    model_ref: str,
    backend: str | None,
    audio_paths: list[str],
    shard_size: int,
    batch_size: int,
    label: str,
    boost: BoostList | None = None,
) -> list[str]:
    """Shard transcription into tasks on the flow's task runner (threads locally, Dask/Ray on a cluster).
    Called from the flow (not from a task) so the shards run on the flow's runner. The first shard runs alone and
    its transcripts are checked against the transcriber contract before the other shards are submitted."""
    size = max(1, shard_size)
    shards = [audio_paths[i : i + size] for i in range(0, len(audio_paths), size)]
    progress = create_progress_artifact(progress=0.0, description=f"{label}: transcribing {len(audio_paths)} rows")

    def submit(shard: list[str]):
        return transcribe_shard.submit(
            model_ref=model_ref, backend=backend, audio_paths=shard, batch_size=batch_size, boost=boost
        )

    hyps: list[str] = []
    futures = [submit(shards[0])] if shards else []
    for i in range(len(shards)):
        hyps += futures[i].result()
        if i == 0:
            futures += [submit(shard) for shard in shards[1:]]
        update_progress_artifact(artifact_id=progress, progress=100.0 * (i + 1) / len(shards))
    return hyps


@task(name="score", **RETRY)
def score(*, out: str, ref: ManifestRef, hyps: list[str], model_ref: str, cfg: FlywheelConfig, **kw) -> ScoreRecord:
    return steps.score(out=out, manifest=ref.load(cfg), hyps=hyps, model_ref=model_ref, cfg=cfg, **kw).record


gate = task(steps.gate, name="gate", **RETRY)


@task(name="split", **RETRY)
def split(*, ref: ManifestRef, out_dir: str, cfg: FlywheelConfig) -> SplitRecord:
    record = steps.split(report=ref.report(cfg), out_dir=out_dir, cfg=cfg)
    for w in record.warnings:
        get_run_logger().warning(w)
    return record


@task(name="train", **ONCE)  # never retried automatically: GPU hours are not free
def train(*, cycle: CycleDir, start: StartingPoint, cfg: FlywheelConfig, run_name: str = "") -> TrainRecord:
    from prefect.runtime import flow_run

    from asr_flywheel.flows import gpu_slot

    progress = create_progress_artifact(progress=0.0, description=f"cycle {cycle.number}: fine-tuning {start.model}")

    def report(done: int, total: int) -> None:
        update_progress_artifact(artifact_id=progress, progress=min(100.0, 100.0 * done / max(total, 1)))

    settings = steps.train_settings(cfg, start.model, backend=start.backend)
    logger = get_run_logger()
    with gpu_slot.hold(
        cfg.cycle.gpu_slot,
        lease_s=cfg.cycle.gpu_lease_s,
        flow_run_id=str(flow_run.id or ""),
        flow_run_name=run_name or str(flow_run.name or ""),
        cycle=str(cycle.path),
        log=logger.warning,
    ):
        cycle.update_record(gpu_acquired=time.time())
        result = steps.train(
            cycle.split_dir,
            start.model,
            cycle.model_dir,
            backend=settings.backend,
            hyperparameters=settings.hyperparameters,
            config=cfg,
            devices=settings.devices,
            num_nodes=settings.num_nodes,
            strategy=settings.strategy,
            progress=report,
        )
        cycle.update_record(gpu_released=time.time())
    update_progress_artifact(artifact_id=progress, progress=100.0)
    return steps.train_record(result, start.backend)


decide = task(steps.decide, name="decide", **RETRY)


register = task(steps.register, name="register", **RETRY)


deploy = task(steps.deploy, name="deploy", **RETRY)


promote = task(steps.promote, name="promote", **RETRY)


class DeployApproval(RunInput):
    """Typed input shown in the Prefect UI when a KEEP candidate waits for a human."""

    approve: bool = False
    reviewer: str = ""
    reason: str = ""
