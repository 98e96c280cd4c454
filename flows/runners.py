"""Task runners for the cycle's sharded transcription: threads locally, Dask or Ray on a cluster.

Chosen by environment so one deployment definition runs anywhere (the runner is fixed when the flow module is
imported, which is when a worker loads it):

    FLYWHEEL_TASK_RUNNER=threads   (default)  FLYWHEEL_MAX_WORKERS=2
    FLYWHEEL_TASK_RUNNER=dask      FLYWHEEL_DASK_ADDRESS=tcp://scheduler:8786   (needs the `dask` extra)
    FLYWHEEL_TASK_RUNNER=ray       FLYWHEEL_RAY_ADDRESS=ray://head:10001        (needs `pip install prefect-ray`)

Install the integrations with the project's constraints (`-c constraints.txt`) so they cannot downgrade prefect.
Each Dask/Ray worker process loads the model once and transcribes its shards (flows.transcription.load_model).
"""

from __future__ import annotations

import os

from asr_flywheel.errors import InputError


def task_runner_from_env(env: dict | None = None):
    env = os.environ if env is None else env
    kind = env.get("FLYWHEEL_TASK_RUNNER", "threads").lower()
    if kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=int(env.get("FLYWHEEL_MAX_WORKERS", "2")))
    if kind == "dask":
        try:
            from prefect_dask import DaskTaskRunner
        except ImportError as exc:
            raise InputError(
                "FLYWHEEL_TASK_RUNNER=dask needs prefect-dask: pip install -c constraints.txt 'asr-flywheel[dask]'"
            ) from exc
        address = env.get("FLYWHEEL_DASK_ADDRESS")
        return DaskTaskRunner(address=address) if address else DaskTaskRunner()
    if kind == "ray":
        try:
            from prefect_ray import RayTaskRunner
        except ImportError as exc:
            raise InputError(
                "FLYWHEEL_TASK_RUNNER=ray needs prefect-ray: pip install -c constraints.txt prefect-ray"
            ) from exc
        address = env.get("FLYWHEEL_RAY_ADDRESS")
        return RayTaskRunner(address=address) if address else RayTaskRunner()
    raise InputError(f"FLYWHEEL_TASK_RUNNER must be threads, dask or ray, not {kind!r}")
