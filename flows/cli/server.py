"""Local Prefect server verbs: start/stop the server, create the deployments, run a worker."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from, ensure_prefect_server, prefect_env_defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="run a local Prefect server (SQLite) for the UI, deployments and events")
    p.add_argument(
        "action",
        choices=["up", "down", "status", "deployments", "slots"],
        help="deployments: create the deployments in prefect.yaml on the server at PREFECT_API_URL; "
        "slots: show the GPU slots and who holds them",
    )
    p.add_argument("--release", metavar="NAME", help="with `slots`: free the slot NAME (its holder is named)")
    p.add_argument(
        "--database",
        metavar="URL",
        help="with `up`: Prefect's database, postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB "
        "(default: [server] database, else SQLite under the home)",
    )
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--home", help="PREFECT_HOME for the server (default: <workspace>/prefect)")
    p.set_defaults(func=cmd_server)
    p = sub.add_parser(
        "worker",
        help="run a process worker for the deployments, with this configuration (no hidden environment needed)",
    )
    p.add_argument("--home", help="PREFECT_HOME of the server (default: <workspace>/prefect)")
    p.set_defaults(func=cmd_worker)


def server_home(args, cfg) -> Path:
    return Path(args.home or Path(cfg.workspace) / "prefect").resolve()


def cmd_server(args) -> int:
    cfg = config_from(args)
    if args.release and args.action != "slots":
        raise InputError("--release goes with `flywheel server slots`")
    if args.action == "slots":
        prefect_env_defaults(cfg.workspace, home=server_home(args, cfg))
        ensure_prefect_server()
        return cmd_slots(args)
    prefect_env_defaults()
    from asr_flywheel.flows import server

    if args.action == "deployments":
        return cmd_deployments(args)
    home = server_home(args, cfg)
    if args.action == "down":
        workers = server.stop_workers(home)
        if workers:
            print(f"stopped {len(workers)} worker(s) started by `flywheel worker` (pid {', '.join(map(str, workers))})")
        print("stopped the Prefect server" if server.stop(home) else f"no server running for {home}")
        return 0
    current = server.running(home)
    if args.action == "status":
        print(f"running at {current.url} (pid {current.pid})" if current else "not running")
        for pid in server.worker_pids(home):
            print(f"worker running (pid {pid})")
        return 0 if current else 1
    database = args.database or cfg.server.database
    if args.database:
        cfg.replace("server", database=args.database)  # the same URL check as the config file's
    if current is None:
        current = server.start(home, args.port, database=database)
    elif args.database:
        print(f"a server already runs for {home}; --database applies when it starts (`flywheel server down` first)")
    server.prepare(current.api_url)
    print(f"Prefect server: {current.url}  (UI; {server.database_label(database)}; logs under {current.home})")
    print(f"work pool '{server.POOL}' and concurrency limit '{server.GPU_SLOT}' are ready. Next:")
    print(f"  export PREFECT_API_URL={current.api_url}")
    print("  flywheel server deployments && flywheel worker")
    return 0


def cmd_slots(args) -> int:
    """The GPU slots on the server this workspace uses; `--release NAME` frees one and names who held it."""
    from asr_flywheel.flows import gpu_slot

    if args.release:
        states = {s.name: s for s in gpu_slot.all_slots()}
        if args.release not in states:
            raise InputError(f"no slot {args.release!r} on this server (slots: {', '.join(sorted(states)) or 'none'})")
        if states[args.release].active == 0 and states[args.release].holder is None:
            print(f"{args.release} is free; nothing to release")
            return 0
        holder = gpu_slot.release(
            args.release, reason="released by hand (`flywheel server slots --release`)", log=print
        )
        print(f"released {args.release}" + (f"; it was held by {holder.describe()}" if holder else ""))
        return 0
    slots = gpu_slot.all_slots()
    for state in slots:
        print(state.describe())
    if not slots:
        print("no slots yet (the first training creates gpu-0)")
    return 0


def cmd_deployments(args) -> int:
    from asr_flywheel.flows import server
    from asr_flywheel.flows.events import api_url

    cfg = config_from(args)
    url = server.require_api(api_url())
    server.prepare(url)
    output = server.create_deployments(url, Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))).stdout[
        -3000:
    ]
    # Prefect's own hint (`prefect worker start --pool ...`) starts a worker without the flywheel's configuration
    print("\n".join(line for line in output.splitlines() if "prefect worker start" not in line))
    for name, why in server.apply_schedules(url, cfg).items():
        print(f"  {name}: {why}")
    location = config_location(args)
    print(
        f"next: flywheel worker{f' --config {location}' if location else ''}   (its flow runs read this configuration)"
    )
    return 0


def config_location(args) -> Path | None:
    """The configuration file this CLI call uses, as an absolute path (what the worker's flow runs must read)."""
    candidate = args.config or os.environ.get("FLYWHEEL_CONFIG")
    if candidate is None and Path("flywheel.toml").is_file():
        candidate = "flywheel.toml"
    if candidate is None:
        return None
    p = Path(candidate).resolve()
    if not p.is_file():
        raise InputError(f"configuration file not found: {p}")
    return p


def cmd_worker(args) -> int:
    """Run `prefect worker start` in the foreground with FLYWHEEL_CONFIG and PREFECT_API_URL set, so the flow runs
    it starts read the same configuration as this command; `flywheel server down` stops it."""
    prefect_env_defaults()
    from asr_flywheel.flows import server
    from asr_flywheel.flows.events import api_url

    cfg = config_from(args)
    home = server_home(args, cfg)
    current = server.running(home)
    url = os.environ.get("PREFECT_API_URL") or (current.api_url if current else None)
    if not url:
        raise InputError(f"no Prefect server: run `flywheel server up` first (none running for {home})")
    os.environ["PREFECT_API_URL"] = url
    extra = {"PREFECT_WORKER_QUERY_SECONDS": "5"}
    location = config_location(args)
    if location is not None:
        extra["FLYWHEEL_CONFIG"] = str(location)
    api_url()  # the same check `publish` makes
    proc = server.start_worker(url, home, extra, log=None, foreground=True)
    (home / f"worker-{proc.pid}.pid").write_text(f"{proc.pid}\n")
    print(f"worker {proc.pid} on pool '{server.POOL}' ({url}); configuration: {location or 'built-in defaults'}")
    try:
        return proc.wait()
    except KeyboardInterrupt:
        server.stop_process_group(proc.pid)
        return 130
    finally:
        (home / f"worker-{proc.pid}.pid").unlink(missing_ok=True)
