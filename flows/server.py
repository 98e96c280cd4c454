"""A local Prefect server for the UI, deployments and event triggers: start, stop, prepare, deploy.

`flywheel server up` runs `prefect server start` detached (SQLite under the workspace), waits for
`/api/health`, then creates the process work pool and the GPU concurrency limit the deployments use.
The tests start servers through the same functions.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.flows import prefect_db
from asr_flywheel.flows.gpu_slot import HEARTBEAT_S, LEASE_STORAGE
from asr_flywheel.processes import alive

POOL = "flywheel-pool"
GPU_SLOT = "gpu-0"
#: Prefect's documented "zombie flow run" automation: a run that stops heart-beating is marked Crashed.
ZOMBIE_AUTOMATION = "flywheel: crash flow runs without heartbeats"
PROJECT_DIR = Path(__file__).resolve().parents[1]


class NoServerError(InputError):
    """No Prefect server is configured, or none answers where one is configured (exit 2, with how to start one)."""


class ServerError(FlywheelError):
    pass


@dataclass
class LocalServer:
    home: Path
    port: int
    pid: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prefect_bin() -> str:
    return str(Path(sys.executable).with_name("prefect"))


def clean_env(home: Path, api_url: str | None, extra: dict | None = None) -> dict:
    """Environment for Prefect subprocesses: never a developer's profile or remote API."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env.update(
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        # Leases on disk survive a server restart; flow runs heart-beat (see flows.gpu_slot).
        PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE=LEASE_STORAGE,
        PREFECT_FLOWS_HEARTBEAT_FREQUENCY=str(HEARTBEAT_S),
        PREFECT_CLI_PROMPT="false",
        PREFECT_CLI_COLORS="false",
        PREFECT_CLI_WRAP_LINES="false",
    )
    if api_url:
        env["PREFECT_API_URL"] = api_url
    env.update(extra or {})
    return env


def database_label(url: str) -> str:
    """Where the database is, for humans: never the password."""
    if not url:
        return "SQLite"
    return f"PostgreSQL at {url.split('@')[-1]}" if url.startswith("postgresql") else url.split("?")[0]


def start(
    home: str | Path,
    port: int | None = None,
    timeout: float = 120.0,
    extra_env: dict | None = None,
    *,
    database: str = "",
) -> LocalServer:
    """`prefect server start` detached, on SQLite under `home` or on `database` (a PostgreSQL URL: Prefect's
    production path, for many concurrent writers)."""
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    api = f"http://127.0.0.1:{port}/api"
    env = clean_env(
        home,
        api,
        {
            # The UI calls the API URL the server knows; without it the UI calls port 4200.
            "PREFECT_UI_API_URL": api,
            "PREFECT_API_DATABASE_CONNECTION_URL": database or f"sqlite+aiosqlite:///{home}/prefect.db",
            "PREFECT_UI_STATIC_DIRECTORY": str(home / "ui"),  # else the UI is copied into site-packages
            # SQLite: Prefect already uses WAL and a 60 s busy timeout, but its connect timeout (10 s) is what
            # surfaces as "database is locked" when a worker, flow runs and the UI write at once.
            "PREFECT_SERVER_DATABASE_TIMEOUT": "60",
            **(extra_env or {}),
        },
    )
    if not database:
        prefect_db.seed(home / "prefect.db", prefect_bin(), env)
    log = open(home / "server.log", "ab")  # noqa: SIM115 - handed to the detached process
    proc = subprocess.Popen(
        [prefect_bin(), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    (home / "server.pid").write_text(f"{proc.pid} {port}\n")
    server = LocalServer(home, port, proc.pid)
    wait_healthy(server, proc, timeout)
    return server


def wait_healthy(server: LocalServer, proc: subprocess.Popen | None, timeout: float) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = (server.home / "server.log").read_text(errors="replace")[-2000:]
            raise ServerError(f"prefect server exited with code {proc.returncode}:\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(f"{server.api_url}/health", timeout=1).status_code == 200:
                return
        time.sleep(0.25)
    raise ServerError(f"prefect server not healthy after {timeout:.0f} s; see {server.home / 'server.log'}")


def require_api(api_url: str, timeout: float = 5.0) -> str:
    """The API URL, once its server answers `/health`; else exit 2 naming the URL and how to start a server."""
    import httpx

    try:
        if httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout).status_code == 200:
            return api_url
    except httpx.HTTPError:
        pass
    raise NoServerError(
        f"no Prefect server answers at {api_url} (PREFECT_API_URL): start one with `flywheel server up` "
        "and export the PREFECT_API_URL it prints"
    )


def running(home: str | Path) -> LocalServer | None:
    pid_file = Path(home).resolve() / "server.pid"
    if not pid_file.exists():
        return None
    pid, port = (int(x) for x in pid_file.read_text().split())
    if not alive(pid):
        return None
    return LocalServer(Path(home).resolve(), port, pid)


def stop_process_group(pid: int, timeout: float = 5.0) -> None:
    """SIGTERM the process group, escalating to SIGKILL (workers and flow-run children included)."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def stop(home: str | Path) -> bool:
    server = running(home)
    if server is None:
        return False
    stop_process_group(server.pid)
    (server.home / "server.pid").unlink(missing_ok=True)
    (server.home / TEMPORARY_MARK).unlink(missing_ok=True)
    return True


#: Marks a server that a CLI command started for itself (not `flywheel server up`): the command stops it when it
#: ends, and a later command adopts (and stops) one left behind by a process killed with SIGKILL.
TEMPORARY_MARK = "server.temporary"
_TEMPORARY: list[Path] = []


def temporary(home: str | Path) -> LocalServer:
    """The server a CLI command runs its flows against when no `PREFECT_API_URL` is set: the workspace's own
    `flywheel server up` server when one runs, else one for this command on the same home (database, leases,
    logs), in its own session so that a Ctrl-C or `timeout` sent to the command's process group does not kill the
    server the command still needs to record what happened. A server to start is only planned here (its port
    chosen, so PREFECT_API_URL can be set before Prefect is imported); `start_planned` starts it once the
    command's input checks passed, and `stop_temporary` (called when the command ends, however it ends) stops it.
    A `flywheel server up` server is never stopped by a command."""
    home = Path(home).resolve()
    current = running(home)
    if current is not None:
        mark = home / TEMPORARY_MARK
        owner = int(mark.read_text().split()[0]) if mark.exists() else None
        if owner is not None and not alive(owner) and home not in _TEMPORARY:
            mark.write_text(f"{os.getpid()}\n")  # left by a killed command: adopt it, and stop it when this one ends
            _TEMPORARY.append(home)
        return current
    planned = LocalServer(home, free_port(), 0)
    _PLANNED.append(planned)
    return planned


_PLANNED: list[LocalServer] = []


def start_planned() -> LocalServer | None:
    """Start the server `temporary` planned, if any (idempotent)."""
    if not _PLANNED:
        return None
    planned = _PLANNED.pop()
    server = start(planned.home, planned.port)
    (planned.home / TEMPORARY_MARK).write_text(f"{os.getpid()}\n")
    _TEMPORARY.append(planned.home)
    prepare(server.api_url)  # the GPU slot, the work pool and the zombie-run automation
    return server


def stop_temporary() -> list[Path]:
    """Stop the temporary servers this process started or adopted (and forget one only planned)."""
    _PLANNED.clear()
    stopped = []
    while _TEMPORARY:
        home = _TEMPORARY.pop()
        if (home / TEMPORARY_MARK).exists() and stop(home):
            stopped.append(home)
    return stopped


def worker_pids(home: str | Path) -> list[int]:
    """Workers started by `flywheel worker` for this server home that are still alive."""
    running_pids = []
    for f in sorted(Path(home).resolve().glob("worker-*.pid")):
        pid = int(f.read_text().split()[0])
        if not alive(pid):
            f.unlink(missing_ok=True)
            continue
        running_pids.append(pid)
    return running_pids


def stop_workers(home: str | Path) -> list[int]:
    """Stop the workers `flywheel worker` started for this home (they would only fail without the server)."""
    pids = worker_pids(home)
    for pid in pids:
        stop_process_group(pid)
        (Path(home).resolve() / f"worker-{pid}.pid").unlink(missing_ok=True)
    return pids


def scheduled_deployments(cfg) -> dict[str, tuple[bool, str]]:
    """Which clock-driven deployments should be active for this configuration, and why (a schedule certain to
    fail or to do nothing is created paused)."""
    return {
        "cycle-scheduled": (
            bool(cfg.cycle.manifest),
            "nightly cycle of " + cfg.cycle.manifest if cfg.cycle.manifest else "paused: no `[cycle] manifest`",
        ),
        "manifest-watch": (
            bool(cfg.cycle.watch),
            f"watching {len(cfg.cycle.watch)} manifest(s)" if cfg.cycle.watch else "paused: empty `[cycle] watch`",
        ),
    }


def apply_schedules(api_url: str, cfg) -> dict[str, str]:
    """Activate or pause the clock-driven deployments according to the configuration. A paused one is paused as a
    deployment too (the Deployments list then shows it off, not a schedule badge that looks armed) and its
    description starts with why ("PAUSED: no `[cycle] manifest`")."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import DeploymentUpdate

    report = {}
    with SyncPrefectClient(api_url) as client:
        deployments = {d.name: d for d in client.read_deployments()}
        for name, (active, why) in scheduled_deployments(cfg).items():
            dep = deployments.get(name)
            if dep is None:
                continue
            for sched in dep.schedules:
                client.update_deployment_schedule(dep.id, sched.id, active=active)
            base = (dep.description or "").split(PAUSED_NOTE_END, 1)[-1].strip()
            note = "" if active else f"PAUSED: {why.removeprefix('paused: ')}{PAUSED_NOTE_END} "
            client.update_deployment(dep.id, DeploymentUpdate(description=note + base))
            (client.resume_deployment if active else client.pause_deployment)(dep.id)
            report[name] = why
    return report


#: Ends the "PAUSED: why" note at the start of a paused deployment's description (so it is replaced, not stacked).
PAUSED_NOTE_END = " —"


def prepare(api_url: str) -> None:
    """Create the process work pool and the strict GPU concurrency limit if they are missing (idempotent)."""
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.client.schemas.actions import GlobalConcurrencyLimitCreate, WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists
    from prefect.workers.process import ProcessWorker

    with SyncPrefectClient(api_url) as client:
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_work_pool(
                WorkPoolCreate(
                    name=POOL, type="process", base_job_template=ProcessWorker.get_default_base_job_template()
                )
            )
        with contextlib.suppress(ObjectAlreadyExists):
            client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=GPU_SLOT, limit=1))
        if not client.read_automations_by_name(ZOMBIE_AUTOMATION):
            client.create_automation(zombie_automation())


def zombie_automation():
    """Mark a flow run Crashed when no heartbeat (nor a final state) followed its last one within 3 beats: a run
    killed with SIGKILL then stops looking "Running" in the UI, and the GPU slot's reclaim agrees with the UI."""
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description="Prefect's zombie flow run pattern (flow-run heartbeats every "
        f"{HEARTBEAT_S} s, set by the flywheel's servers and workers)",
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat"},
            expect={
                "prefect.flow-run.heartbeat",
                "prefect.flow-run.Completed",
                "prefect.flow-run.Failed",
                "prefect.flow-run.Cancelled",
                "prefect.flow-run.Crashed",
            },
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=3 * HEARTBEAT_S),
        ),
        actions=[ChangeFlowRunState(state=StateType.CRASHED, message="marked Crashed: no heartbeat for 3 beats")],
    )


def create_deployments(api_url: str, home: str | Path, extra_env: dict | None = None) -> subprocess.CompletedProcess:
    """`prefect --no-prompt deploy --all` on the project's prefect.yaml (nothing is built or pushed)."""
    env = clean_env(Path(home), api_url, extra_env)
    proc = subprocess.run(
        [prefect_bin(), "--no-prompt", "deploy", "--all"], cwd=PROJECT_DIR, env=env, capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise ServerError(f"prefect deploy failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}")
    return proc


def start_worker(
    api_url: str, home: str | Path, extra_env: dict | None = None, log: Path | None = None, *, foreground: bool = False
) -> subprocess.Popen:
    """A process worker in its own process group (so stopping it stops its flow runs). In the foreground its
    output goes to this terminal, else to `log` (default <home>/worker.log)."""
    env = clean_env(
        Path(home),
        api_url,
        {"PREFECT_WORKER_QUERY_SECONDS": "1", "PREFECT_WORKER_PREFETCH_SECONDS": "2", **(extra_env or {})},
    )
    out = None if foreground else open(log or Path(home) / "worker.log", "ab")  # noqa: SIM115 - detached process
    return subprocess.Popen(
        [prefect_bin(), "worker", "start", "--pool", POOL, "--type", "process"],
        env=env,
        stdout=out,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        cwd=PROJECT_DIR,
    )
