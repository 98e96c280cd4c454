import pytest

from asr_flywheel.errors import InputError
from asr_flywheel.flows.runners import task_runner_from_env


def test_threads_by_default_with_configurable_workers():
    runner = task_runner_from_env({"FLYWHEEL_MAX_WORKERS": "3"})
    assert type(runner).__name__ == "ThreadPoolTaskRunner" and runner._max_workers == 3


@pytest.mark.parametrize("kind", ["dask", "ray"])
def test_cluster_runners_explain_the_missing_integration(kind):
    """prefect-dask / prefect-ray are optional: selecting one without it installed is a clear error."""
    try:
        __import__(f"prefect_{kind}")
    except ImportError:
        with pytest.raises(InputError, match=f"prefect-{kind}"):
            task_runner_from_env({"FLYWHEEL_TASK_RUNNER": kind})
    else:
        pytest.skip(f"prefect-{kind} is installed here (see test_dask_runner_connects_to_the_given_cluster)")


def test_dask_runner_connects_to_the_given_cluster():
    pytest.importorskip("prefect_dask", reason="the dask extra is not installed")
    runner = task_runner_from_env({"FLYWHEEL_TASK_RUNNER": "dask", "FLYWHEEL_DASK_ADDRESS": "tcp://10.0.0.5:8786"})
    assert type(runner).__name__ == "DaskTaskRunner" and runner.address == "tcp://10.0.0.5:8786"


def test_unknown_runner_is_rejected():
    with pytest.raises(InputError, match="threads, dask or ray"):
        task_runner_from_env({"FLYWHEEL_TASK_RUNNER": "spark"})
