"""A real local Prefect server (SQLite, temp home, loopback port) shared by the flow tests of a session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from helpers import write_tiny_cycle_config


@pytest.fixture(scope="session")
def prefect_server(tmp_path_factory):
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from asr_flywheel.flows import server

    srv = server.start(tmp_path_factory.mktemp("prefect-home"))
    server.prepare(srv.api_url)
    with temporary_settings(updates={PREFECT_API_URL: srv.api_url}):
        yield srv
        # Flush this process's log/event senders while the server is still up, or exit hangs ~70 s.
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker

        APILogWorker.drain_all(timeout=10)
        EventsWorker.drain_all(timeout=10)
    server.stop_process_group(srv.pid)


@pytest.fixture(scope="session")
def prefect_client(prefect_server):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        yield client


@pytest.fixture
def cycle_config(tmp_path, nemo_tiny_models) -> Path:
    """A flywheel.toml for a tiny, fast cycle in its own workspace (base = tiny CTC model built from config)."""
    return write_tiny_cycle_config(tmp_path / "flywheel.toml", tmp_path / "workspace", nemo_tiny_models["ctc"])
