"""A burst of growth events against a real Prefect server on PostgreSQL (Prefect's production database) and on
SQLite (the one-machine default): 20 events for 5 manifests within 10 s. Exactly one cycle runs per manifest version,
none is lost, training never overlaps on the GPU slot, and PostgreSQL logs no lock error. The counts for both
databases are printed (`pytest -s`) and summarised in docs/scaling.md.

PostgreSQL is Debian's `postgresql` (installed by `make setup`), started here as the `postgres` user in its own data
directory on a free loopback port and stopped at the end. Marked `burst` and `thorough` (about 4 minutes, opt-in:
`pytest -m thorough`): the default run proves one cycle per manifest version on fewer events
(tests/flows/test_deployments_e2e.py). The SQLite run is the comparison (`pytest -m comparison -s`)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from helpers import free_ports, write_manifest, write_tiny_cycle_config

pytestmark = [pytest.mark.slow, pytest.mark.burst, pytest.mark.thorough]
PG_BIN = Path("/usr/lib/postgresql")
LOCK_ERRORS = re.compile(r"database is locked|deadlock detected|could not serialize access|QueuePool limit", re.I)


def pg_tool(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}"))
    if not found:
        pytest.skip(f"PostgreSQL's {name} is not installed (Debian package `postgresql`; `make setup` installs it)")
    return str(found[-1])


@pytest.fixture(scope="module")
def postgres():
    """A throwaway PostgreSQL cluster: its own data directory, a free loopback port, trust auth on loopback only."""
    root = Path(tempfile.mkdtemp(prefix="flywheel-pg-"))  # outside pytest's 0700 root-owned tree: postgres reads it
    os.chmod(root, 0o755)
    data, (port,) = root / "data", free_ports(1)
    shutil.chown(root, "postgres", "postgres")
    run_as = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*run_as, pg_tool("initdb"), "-D", str(data), "-A", "trust", "-U", "flywheel"], check=True,
                   capture_output=True)  # fmt: skip
    opts = f"-p {port} -c listen_addresses=127.0.0.1 -k {root} -c max_connections=200"
    subprocess.run([*run_as, pg_tool("pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "pg.log"), "-w", "start"],
                   check=True, capture_output=True)  # fmt: skip
    try:
        subprocess.run([*run_as, pg_tool("createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "flywheel", "prefect"],
                       check=True, capture_output=True)  # fmt: skip
        yield f"postgresql+asyncpg://flywheel@127.0.0.1:{port}/prefect"
    finally:
        subprocess.run([*run_as, pg_tool("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True)
        shutil.rmtree(root, ignore_errors=True)


def burst(database: str, root: Path, nemo_tiny_models, rows: list[dict]) -> dict:
    """Server (on `database`), deployments, one worker; then 4 growth events for each of 5 manifests in < 10 s."""
    from asr_flywheel.config import load_config
    from asr_flywheel.flows import server
    from asr_flywheel.flows.events import growth_event, post_events

    home = root / "prefect"
    srv = server.start(home, database=database)
    worker = None
    try:
        server.prepare(srv.api_url)
        # 24-row manifests stop at the gate; the 32-row ones train (1 step), so the GPU slot is really contended
        config = write_tiny_cycle_config(root / "fw.toml", root / "ws", nemo_tiny_models["ctc"], epochs=1,
                                         gate={"min_rows": 28}, hyperparameters={"max_steps": 1})  # fmt: skip
        server.create_deployments(srv.api_url, home)
        server.apply_schedules(srv.api_url, load_config(config))
        worker = server.start_worker(srv.api_url, home, {"FLYWHEEL_CONFIG": str(config)}, log=root / "worker.log")
        manifests = []
        for i, size in enumerate((24, 24, 24, 32, 32)):
            chosen = rows[i : i + size] if size == 24 else rows[:size] if i == 3 else rows[::-1][:size]
            manifests.append(write_manifest(root / f"m{i}.jsonl", chosen))
        versions = {m: _version(m) for m in manifests}
        started = time.monotonic()
        for _ in range(4):
            for m in manifests:
                event = growth_event(m.resolve(), versions[m], len(m.read_text().splitlines()), 0)
                post_events([{**event, "id": str(uuid.uuid4())}], url=srv.api_url)
        sent_s = time.monotonic() - started
        runs = wait_runs(srv.api_url, 5, root / "worker.log")
        ws = root / "ws"
        claims = sorted((ws / "claims").glob("*.json"))
        records = [json.loads(p.read_text()) for p in sorted((ws / "cycles").glob("cycle-*/cycle.json"))]
        logs = (home / "server.log").read_text(errors="replace") + (root / "worker.log").read_text(errors="replace")
        return {
            "sent_s": sent_s,
            "runs": runs,
            "claims": claims,
            "records": records,
            "lock_errors": LOCK_ERRORS.findall(logs),
            "elapsed_s": time.monotonic() - started,
            "slot": _slot(srv.api_url),
        }
    finally:
        if worker is not None:
            server.stop_process_group(worker.pid)
        server.stop(home)


def _version(manifest: Path) -> str:
    from asr_flywheel.validation import load_manifest

    return load_manifest(manifest).version


def _slot(api: str) -> dict:
    import httpx

    return httpx.get(f"{api}/v2/concurrency_limits/gpu-0", timeout=30).json()


def wait_runs(api: str, count: int, log: Path, timeout: float = 600.0) -> list[dict]:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30).json()
        runs = [r for r in runs if r["name"].startswith("ws-cycle")]
        if len(runs) >= count and all(r["state_type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED") for r in runs):
            time.sleep(3)  # a late duplicate run would show up now
            return httpx.post(f"{api}/flow_runs/filter", json={}, timeout=30).json()
        time.sleep(1)
    raise AssertionError(f"runs did not finish: {log.read_text()[-3000:]}")


def check(result: dict) -> None:
    runs = [r for r in result["runs"] if r["name"].startswith("ws-cycle")]
    assert result["sent_s"] < 10
    assert len(result["claims"]) == 5  # one claim per manifest version: none lost
    assert sorted(r["status"] for r in result["records"]) == ["complete"] * 5
    assert all(r["state_type"] == "COMPLETED" for r in runs), [(r["name"], r["state_type"]) for r in runs]
    cycled = [r for r in runs if not r["name"].endswith("already-cycled")]
    assert len(cycled) == 5, [r["name"] for r in runs]  # exactly one cycle per version
    spans = sorted((r["gpu_acquired"], r["gpu_released"]) for r in result["records"] if "gpu_acquired" in r)
    assert len(spans) == 2 and spans[0][1] <= spans[1][0], spans  # the GPU limit held
    assert result["slot"]["limit"] == 1 and result["slot"]["active_slots"] == 0


def rows_of(tiny_dataset: Path) -> list[dict]:
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()]
    return [{**r, "audio_filepath": str(tiny_dataset.parent / r["audio_filepath"])} for r in rows]


def report(name: str, r: dict) -> None:
    print(
        f"burst on {name}: 20 events in {r['sent_s']:.1f} s -> {len(r['claims'])} cycles, {len(r['runs'])} runs, "
        f"lock errors logged: {len(r['lock_errors'])}, all done after {r['elapsed_s']:.0f} s"
    )


def test_a_burst_of_growth_events_on_postgresql(postgres, nemo_tiny_models, tiny_dataset, tmp_path):
    pg = burst(postgres, tmp_path / "pg", nemo_tiny_models, rows_of(tiny_dataset))
    report("PostgreSQL", pg)
    check(pg)
    assert pg["lock_errors"] == []


@pytest.mark.comparison
def test_the_same_burst_on_sqlite(nemo_tiny_models, tiny_dataset, tmp_path):
    """The comparison for docs/scaling.md (`pytest -m comparison -s`): the same checks, lock errors only counted."""
    lite = burst("", tmp_path / "sqlite", nemo_tiny_models, rows_of(tiny_dataset))
    report("SQLite", lite)
    check(lite)
