"""Local Prefect server verbs: start/stop the server and create the deployments."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from asr_flywheel.flows.cli._common import config_from, prefect_env_defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("server", help="run a local Prefect server (SQLite) for the UI, deployments and events")
    p.add_argument(
        "action",
        choices=["up", "down", "status", "deployments"],
        help="deployments: create the deployments in prefect.yaml on the server at PREFECT_API_URL",
    )
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--home", help="PREFECT_HOME for the server (default: <workspace>/prefect)")
    p.set_defaults(func=cmd_server)


def cmd_server(args) -> int:
    prefect_env_defaults()
    from asr_flywheel.flows import server

    if args.action == "deployments":
        return cmd_deployments(args)
    cfg = config_from(args)
    home = Path(args.home or Path(cfg.workspace) / "prefect")
    if args.action == "down":
        print("stopped" if server.stop(home) else f"no server running for {home}")
        return 0
    current = server.running(home)
    if args.action == "status":
        print(f"running at {current.url} (pid {current.pid})" if current else "not running")
        return 0 if current else 1
    if current is None:
        current = server.start(home, args.port)
    server.prepare(current.api_url)
    print(f"Prefect server: {current.url}  (UI; SQLite and logs under {current.home})")
    print(f"work pool '{server.POOL}' and concurrency limit '{server.GPU_SLOT}' are ready. Next:")
    print(f"  export PREFECT_API_URL={current.api_url}")
    print("  flywheel server deployments && prefect worker start --pool flywheel-pool")
    return 0


def cmd_deployments(args) -> int:
    prefect_env_defaults()
    from asr_flywheel.flows import server
    from asr_flywheel.flows.events import api_url

    url = api_url()
    server.prepare(url)
    print(server.deploy(url, Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))).stdout[-3000:])
    return 0
