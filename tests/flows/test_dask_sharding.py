"""The cycle's sharded transcription on a real Dask LocalCluster (two worker processes, prefect-dask), selected the
way a deployment selects it (FLYWHEEL_TASK_RUNNER=dask), gives exactly the thread runner's hypotheses."""

from __future__ import annotations

import pytest

pytest.importorskip("prefect_dask", reason="the dask extra (prefect-dask) is not installed")
pytestmark = pytest.mark.slow


def test_sharded_transcription_on_a_dask_cluster_matches_the_thread_runner(
    prefect_server, nemo_tiny_models, tiny_dataset
):
    from distributed import Client, LocalCluster
    from prefect import flow

    from asr_flywheel.flows import transcription
    from asr_flywheel.flows.runners import task_runner_from_env
    from asr_flywheel.flows.tasks import transcribe_sharded
    from asr_flywheel.validation import load_manifest

    paths = load_manifest(tiny_dataset, check_audio=False).audio_paths[:12]
    model = str(nemo_tiny_models["ctc"])

    def shards() -> list[str]:
        return transcribe_sharded(
            model_ref=model, backend=None, audio_paths=paths, shard_size=3, batch_size=3, label="dask test"
        )

    threads = flow(name="shards-threads", task_runner=task_runner_from_env({}))(shards)()
    transcription.release_models()
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        runner = task_runner_from_env(
            {"FLYWHEEL_TASK_RUNNER": "dask", "FLYWHEEL_DASK_ADDRESS": cluster.scheduler_address}
        )
        on_dask = flow(name="shards-dask", task_runner=runner)(shards)()
        loaded = client.run(lambda: sorted(key[0] for key in transcription._MODELS))
    assert on_dask == threads and len(on_dask) == 12
    assert len(loaded) == 2 and all(v == [model] for v in loaded.values())  # both worker processes transcribed
