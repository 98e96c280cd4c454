"""End to end: a real local Prefect server, the project's own prefect.yaml deployed with `prefect deploy --all`, a
process worker, and a growing manifest announced with growth events. The UI check opens the real Prefect UI in
headless Chromium."""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import pytest

from asr_flywheel.manifest import append_rows
from helpers import write_manifest, write_tiny_cycle_config

ARTIFACT_DIR = Path(__file__).resolve().parents[2] / "test-artifacts"
HEARTBEAT = "Worker channel heartbeat persistence failed"
#: The docket background task a worker poll schedules; its failure line reads
#: "docket.dependencies - ↩ [ 60143ms] mark_work_queues_ready(polled_work_queue_ids=..., ...)".
BACKGROUND_POLL_BOOKKEEPING = "] mark_work_queues_ready("
#: The server's in-memory event consumer: a handler that fails on a lock is logged and its message put back
#: (`subscription.retry` in prefect.server.utilities.messaging.memory), so no event is lost.
CONSUMER_RETRY = "prefect.server.utilities.messaging.memory - Failed in consume_loop"
BROWSER_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def runs_of(client, deployment_id) -> list:
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId

    return client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment_id])))


@pytest.fixture(scope="module")
def e2e(prefect_server, prefect_client, nemo_tiny_models, tiny_dataset, tmp_path_factory):
    from asr_flywheel.flows import server

    root = tmp_path_factory.mktemp("e2e")
    server_log = prefect_server.home / "server.log"
    log_start = server_log.stat().st_size if server_log.exists() else 0  # the session's server log before this module
    config = write_tiny_cycle_config(root / "flywheel.toml", root / "workspace", nemo_tiny_models["ctc"], epochs=1)
    server.create_deployments(prefect_server.api_url, prefect_server.home)
    # What `flywheel server deployments` does next: this configuration has no `[cycle] manifest` and no
    # `[cycle] watch`, so the clock-driven deployments are paused (and any run of them would be a bug).
    from asr_flywheel.config import load_config

    server.apply_schedules(prefect_server.api_url, load_config(config))
    deployments = {d.name: d for d in prefect_client.read_deployments()}
    worker = server.start_worker(
        prefect_server.api_url, prefect_server.home, {"FLYWHEEL_CONFIG": str(config)}, log=root / "worker.log"
    )
    deadline = time.monotonic() + 60
    while not any(str(w.status).endswith("ONLINE") for w in prefect_client.read_workers_for_work_pool(server.POOL)):
        assert worker.poll() is None and time.monotonic() < deadline, (root / "worker.log").read_text()[-3000:]
        time.sleep(0.25)
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()]
    for r in rows:
        r["audio_filepath"] = str(tiny_dataset.parent / r["audio_filepath"])
    yield {
        "root": root,
        "config": config,
        "deployments": deployments,
        "rows": rows,
        "worker_log": root / "worker.log",
        "server_log_start": log_start,
    }
    server.stop_process_group(worker.pid)


def wait_completed(client, deployment_id, count: int, log: Path, timeout: float = 420.0) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        runs = runs_of(client, deployment_id)
        if len(runs) >= count and all(r.state and r.state.is_final() for r in runs):
            return runs
        time.sleep(1)
    raise AssertionError(
        f"runs not finished: {[(r.name, r.state_name) for r in runs_of(client, deployment_id)]}\n"
        f"{log.read_text()[-4000:]}"
    )


def test_deployments_from_prefect_yaml(e2e, prefect_client):
    d = e2e["deployments"]
    assert {"cycle-scheduled", "cycle-on-manifest-growth", "cycle-manual", "manifest-watch"} <= set(d)
    assert d["cycle-scheduled"].schedules[0].schedule.cron == "0 3 * * *"
    # created paused: without `[cycle] manifest` / `[cycle] watch` they could only fail or do nothing
    assert [s.active for s in d["cycle-scheduled"].schedules + d["manifest-watch"].schedules] == [False, False]
    for name, why in (("cycle-scheduled", "no `[cycle] manifest`"), ("manifest-watch", "empty `[cycle] watch`")):
        assert d[name].paused and d[name].description.startswith(f"PAUSED: {why} — "), d[name].description
    assert not d["cycle-on-manifest-growth"].paused and not d["cycle-manual"].paused
    growth = d["cycle-on-manifest-growth"]
    assert growth.global_concurrency_limit.limit == 1  # one cycle at a time; later versions queue
    assert str(growth.concurrency_options.collision_strategy).endswith("ENQUEUE")
    autos = prefect_client.read_resource_related_automations(f"prefect.deployment.{d['cycle-on-manifest-growth'].id}")
    assert len(autos) == 1 and autos[0].trigger.expect == {"flywheel.manifest.grown"}


def test_growth_events_start_exactly_one_cycle_per_manifest_version(e2e, prefect_client):
    from asr_flywheel.config import load_config
    from asr_flywheel.flows.events import growth_event, post_events, publish

    cfg = load_config(e2e["config"])
    manifest = write_manifest(e2e["root"] / "data" / "manifest.jsonl", e2e["rows"][:24])
    first = publish(manifest, cfg)
    assert first.status == "published" and first.rows == 24
    assert publish(manifest, cfg).status == "unchanged"  # the same version is not announced twice
    # A burst for the same version from other publishers (fresh event ids) within the debounce window.
    for _ in range(4):
        event = growth_event(manifest.resolve(), first.version, 24, 0)
        post_events([{**event, "id": str(uuid.uuid4())}])

    # Grow right away, before the v1 run has even started: each run must still cycle exactly the version its
    # event announced (manifests only grow by appending, so v1 is the first 24 rows, hash-checked).
    append_rows(manifest, e2e["rows"][24:])  # the manifest grows: a new version
    second = publish(manifest, cfg)
    assert second.status == "published" and second.rows == 32 and second.added_rows == 8

    dep = e2e["deployments"]["cycle-on-manifest-growth"]
    runs = wait_completed(prefect_client, dep.id, 2, e2e["worker_log"])
    time.sleep(3)  # a late duplicate would show up here
    runs = runs_of(prefect_client, dep.id)
    assert sorted(r.parameters["content_hash"] for r in runs) == sorted([first.version, second.version])
    assert all(r.state_name == "Completed" for r in runs), [(r.name, r.state_name) for r in runs]
    assert {r.parameters["manifest"] for r in runs} == {str(manifest.resolve())}

    cycles = sorted((e2e["root"] / "workspace" / "cycles").iterdir())
    records = [json.loads((c / "cycle.json").read_text()) for c in cycles]
    assert [r["status"] for r in records] == ["complete", "complete"]
    assert {r["manifest_version"] for r in records} == {first.version, second.version}
    assert all(set(r["steps"]) >= {"baseline", "gate", "split", "train", "rescore", "decide"} for r in records)

    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    for run in runs:
        n = run.name.removeprefix("workspace-cycle-")
        assert n.isdigit(), run.name  # runs are named after their cycle
        keys = {
            a.key
            for a in prefect_client.read_artifacts(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
        }
        assert {
            f"workspace-cycle-{n}-baseline-leaderboard",
            f"workspace-cycle-{n}-heldout-leaderboard",
            f"workspace-cycle-{n}-decision",
        } <= keys

    assert runs_of(prefect_client, e2e["deployments"]["cycle-scheduled"].id) == []
    assert runs_of(prefect_client, e2e["deployments"]["cycle-manual"].id) == []
    e2e["runs"] = runs


def test_artifacts_read_as_the_history_of_the_flywheel(e2e, prefect_client):
    """The README's reading: the Artifacts page lists one key per cycle and kind, and every version of a key
    belongs to that cycle's run (cycle N's held-out board never lands on cycle N+1's baseline key)."""
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    if "runs" not in e2e:
        pytest.skip("needs the cycles of the previous test")
    run_names = {r.id: r.name for r in e2e["runs"]}
    boards = prefect_client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="workspace-cycle-%-leaderboard"))
    )
    mine = [a for a in boards if a.flow_run_id in run_names]
    assert {a.key for a in mine} == {
        f"workspace-cycle-{n}-{kind}-leaderboard" for n in (1, 2) for kind in ("baseline", "heldout")
    }
    for a in mine:
        n = int(a.key.removeprefix("workspace-cycle-").split("-")[0])
        assert run_names[a.flow_run_id] == f"workspace-cycle-{n}", (a.key, run_names[a.flow_run_id])
        assert f"# Leaderboard — cycle {n if 'baseline' in a.key else n + 1}" in a.data


@pytest.mark.thorough
def test_a_forced_publication_starts_a_new_run_and_a_new_cycle(e2e, prefect_client):
    """`publish --force` is not swallowed by the trigger's debounce: the run it starts cycles the version again.
    Opt-in (`pytest -m thorough`, about a minute: two more flow runs); the default run covers a forced publication
    as an event the debounce cannot swallow (tests/flows/test_events.py)."""
    from asr_flywheel.config import load_config
    from asr_flywheel.flows.events import publish

    cfg = load_config(e2e["config"])
    small = write_manifest(e2e["root"] / "small" / "manifest.jsonl", e2e["rows"][:12])  # stops at the gate: cheap
    dep = e2e["deployments"]["cycle-on-manifest-growth"]
    before = len(runs_of(prefect_client, dep.id))
    assert publish(small, cfg).status == "published"
    wait_completed(prefect_client, dep.id, before + 1, e2e["worker_log"])
    assert publish(small, cfg).status == "unchanged"
    assert publish(small, cfg, force=True).status == "published"
    runs = wait_completed(prefect_client, dep.id, before + 2, e2e["worker_log"])
    forced = [r for r in runs if r.parameters.get("recycle") in (True, "True", "true")]
    assert len(forced) == 1 and forced[0].state_name == "Completed"
    claims = list((e2e["root"] / "workspace" / "claims").glob("*.json"))
    small_claim = [json.loads(c.read_text()) for c in claims if json.loads(c.read_text())["manifest"] == str(small)]
    assert len(small_claim) == 1 and len(small_claim[0]["earlier_cycles"]) == 1  # a new cycle of the same version
    assert forced[0].name == f"workspace-cycle-{small_claim[0]['cycle']}"


def test_no_api_call_fails_on_a_database_lock(e2e, prefect_server):
    """The server runs with a 60 s SQLite connect timeout (`PREFECT_SERVER_DATABASE_TIMEOUT`; WAL and a 60 s busy
    timeout are Prefect's own), so no API call of this scenario (deployments, a worker, event-triggered cycles) fails
    on a lock. What may remain is Prefect 3.8's worker bookkeeping that a poll leaves to the server in the
    background: the worker-heartbeat upsert in a DEFERRED transaction, which SQLite refuses at once
    (SQLITE_BUSY_SNAPSHOT: no timeout applies) when another write lands in between, and the docket task
    `mark_work_queues_ready`; the worker's next poll repeats both. The server's event consumer may also fail a
    handler on a lock: it logs it and puts the message back, so the event is handled again, not lost. No settings
    reach them; PostgreSQL has none of these.

    Only this module's part of the session server's log is read: while other modules train models beside the shared
    server, a saturated 2-core machine has also made a state-validation transaction fail on a lock, which the client
    retried (every run still completed). That is Prefect's SQLite backend under load, not this scenario; production
    runs PostgreSQL (docs/scaling.md)."""
    with open(prefect_server.home / "server.log", "rb") as fh:
        fh.seek(e2e["server_log_start"])
        log = fh.read().decode(errors="replace")
    entries = re.split(r"\n(?=\d\d:\d\d:\d\d\.\d+ \| )", log)
    heads = [e.split("\n", 1)[0] for e in entries if "database is locked" in e]
    assert all(any(known in h for known in (HEARTBEAT, BACKGROUND_POLL_BOOKKEEPING, CONSUMER_RETRY)) for h in heads), (
        heads
    )


def test_the_leaderboard_renders_as_a_table_in_the_prefect_ui(e2e, prefect_server, prefect_client):
    """Headless Chromium (Debian's, driven by Playwright) opens the artifact page of the finished run."""
    from playwright.sync_api import sync_playwright
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    if "runs" not in e2e:
        pytest.skip("needs the cycles of the previous test")
    art = next(
        a
        for a in prefect_client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(like_="workspace-cycle-%-baseline-leaderboard"))
        )
        if a.type == "markdown"
    )
    ARTIFACT_DIR.mkdir(exist_ok=True)
    shot = ARTIFACT_DIR / "prefect-ui-leaderboard.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1600})
        page.goto(f"{prefect_server.url}/v2/artifacts/artifact/{art.id}", wait_until="domcontentloaded")
        table = page.locator("table", has_text="KER").first
        table.wait_for(state="visible", timeout=60000)
        text = table.inner_text()
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert "WER (mean of rows)" in text and "SER" in text
    assert shot.stat().st_size > 10_000


def test_the_ker_chart_displays_in_the_prefect_ui(e2e, prefect_server, prefect_client):
    """The chart artifact (PNG embedded as a data: URI) is drawn by the real UI; the screenshot is kept."""
    from playwright.sync_api import sync_playwright
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    if "runs" not in e2e:
        pytest.skip("needs the cycles of the previous test")
    art = prefect_client.read_artifacts(
        artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["workspace-cycle-2-chart"]))
    )[0]
    ARTIFACT_DIR.mkdir(exist_ok=True)
    shot = ARTIFACT_DIR / "prefect-ui-ker-chart.png"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=BROWSER_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1400})
        page.goto(f"{prefect_server.url}/v2/artifacts/artifact/{art.id}", wait_until="domcontentloaded")
        img = page.locator("img[src^='data:image/png']").first
        img.wait_for(state="visible", timeout=60000)
        size = img.evaluate("el => [el.naturalWidth, el.naturalHeight]")
        page.screenshot(path=str(shot), full_page=True)
        browser.close()
    assert size[0] > 300 and size[1] > 200  # the PNG decoded and drew
    assert shot.stat().st_size > 20_000
