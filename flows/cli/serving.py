"""Serving verbs: run the local tritonserver, ship a model (Triton or Riva), roll back. Every backend is reached
through its deployer plugin (`plugins.contracts.Deployer`, and `Server` for `serve`), never imported here."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from asr_flywheel.cycle import require_writable_dir
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.flows.cli._common import config_from

#: The deployer plugin whose serving process `flywheel serve` runs on this host (it implements `Server`).
LOCAL_SERVER = "triton"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("serve", help="run the local tritonserver (explicit model control, 127.0.0.1 by default)")
    p.add_argument("action", choices=["start", "stop", "status"])
    p.add_argument("--repo", help="model repository (default: [deploy] repo, else <workspace>/triton)")
    p.add_argument("--http-port", type=int, help="default 8000")
    p.add_argument("--grpc-port", type=int, help="default 8001")
    p.add_argument("--host", help="address to bind (default: 127.0.0.1, loopback only)")
    p.set_defaults(func=cmd_serve)
    p = sub.add_parser("deploy", help="ship a model: a new Triton version (zero downtime) or the Riva build script")
    p.add_argument("model", help=".nemo file or Hugging Face model directory")
    p.add_argument("--to", required=True, dest="deployer", help="deployer plugin: triton, riva, or an installed one")
    _target_args(p)
    p.add_argument("--out", help="where records (riva: riva_deploy.sh/.json) are written")
    p.add_argument("--parity-manifest", help="check served parity on these rows (needs --offline-hyps)")
    p.add_argument("--offline-hyps", help="offline_hyps.jsonl of the same model on --parity-manifest")
    p.add_argument("--json", action="store_true", help="print the outcome as JSON")
    p.set_defaults(func=cmd_deploy)
    p = sub.add_parser("rollback", help="serve an earlier version of a served model (Triton)")
    p.add_argument("name")
    p.add_argument("--deployer", default="triton", help="the deployer plugin that served it (default: triton)")
    _target_args(p, with_name=False)
    p.add_argument("--to-version", type=int, help="default: the version served before the current one")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_rollback)


def _target_args(p: argparse.ArgumentParser, with_name: bool = True) -> None:
    p.add_argument("--repo", help="Triton model repository (default: [deploy] repo, else <workspace>/triton)")
    p.add_argument("--url", help="HOST:PORT of the server (default: [deploy] url)")
    p.add_argument("--protocol", choices=["http", "grpc"], help="which port --url names (default: [deploy])")
    if with_name:
        p.add_argument("--name", help="served model name (default: [deploy] model_name; riva: the file's stem)")


def cmd_serve(args) -> int:
    from asr_flywheel.flows.deploying import deployer_plugin
    from asr_flywheel.plugins.contracts import Server

    plugin = deployer_plugin(LOCAL_SERVER)
    if not isinstance(plugin, Server):
        raise InputError(f"the {LOCAL_SERVER} deployer cannot run a local server")
    repo = Path(plugin.check_target(config_from(args), repo=args.repo)["repo"])
    if args.action == "stop":
        print("stopped" if plugin.serve_stop(repo) else f"no tritonserver running for {repo}")
        return 0
    current = plugin.serve_status(repo)
    if args.action == "status":
        if current is None:
            print(f"no tritonserver running for {repo}")
            return 1
        print(f"tritonserver (pid {current.pid}) for {current.repo}: HTTP {current.http_url}  gRPC {current.grpc_url}")
        return 0
    if current is not None:
        _same_server_or_refuse(current, args)
        print(f"already running for {repo}")
    else:
        require_writable_dir(repo, "--repo")
    info = current or plugin.serve_start(
        repo, host=args.host or "127.0.0.1", http_port=args.http_port or 8000, grpc_port=args.grpc_port or 8001
    )
    print(f"tritonserver (pid {info.pid}) serving {info.repo}: HTTP {info.http_url}  gRPC {info.grpc_url}")
    print(f"log: {info.log}")
    print(f"next: flywheel deploy MODEL --to {LOCAL_SERVER} --repo {info.repo} --url {info.http_url}")
    return 0


def _same_server_or_refuse(current, args) -> None:
    """`serve start` on a repo that is already served returns that server, unless other ports or another address
    were asked for: then it says so and changes nothing (one server per repository)."""
    asked = {"--http-port": args.http_port, "--grpc-port": args.grpc_port, "--host": args.host}
    http_host, http_port = current.http_url.rsplit(":", 1)
    has = {"--http-port": int(http_port), "--grpc-port": int(current.grpc_url.rsplit(":", 1)[1]), "--host": http_host}
    differ = [f"{k} {asked[k]} (it uses {has[k]})" for k in asked if asked[k] is not None and asked[k] != has[k]]
    if differ:
        raise InputError(
            f"tritonserver (pid {current.pid}) already serves {current.repo} at HTTP {current.http_url}, gRPC "
            f"{current.grpc_url}; asked for {', '.join(differ)}: run `flywheel serve stop` first to change them"
        )


def cmd_deploy(args) -> int:
    from asr_flywheel.flows.deploying import deploy_and_verify

    if (args.parity_manifest is None) != (args.offline_hyps is None):
        raise InputError("--parity-manifest and --offline-hyps go together")
    cfg = config_from(args)
    if args.deployer == "riva" and not args.out:
        raise InputError("--to riva needs --out DIR (where riva_deploy.sh and riva_deploy.json are written)")
    overrides = {"name": args.name, "repo": args.repo, "url": args.url, "protocol": args.protocol}
    out = Path(args.out) if args.out else Path(cfg.workspace) / "deploys" / time.strftime("%Y%m%d-%H%M%S")
    require_writable_dir(out, "--out" if args.out else "[workspace] deploys folder")
    if args.repo:
        require_writable_dir(args.repo, "--repo")
    outcome = deploy_and_verify(
        args.model,
        args.parity_manifest,
        args.offline_hyps,
        cfg,
        out_dir=out,
        deployer=args.deployer,
        **{k: v for k, v in overrides.items() if v},
    )
    if args.json:
        print(json.dumps(outcome.to_dict(), indent=2, ensure_ascii=False))
    elif args.deployer == "riva" and outcome.ok:
        details = outcome.record["details"]
        print(Path(details["script"]).read_text())
        print(json.dumps({k: details[k] for k in ("architecture", "decoder_type", "commands")}, indent=2))
        print(f"wrote {details['script']} and {details['record']}")
    else:
        print(
            ("deployed: " if outcome.ok else "deploy FAILED: ") + outcome.reason,
            file=sys.stdout if outcome.ok else sys.stderr,
        )
    return 0 if outcome.ok else 1


def cmd_rollback(args) -> int:
    from asr_flywheel.flows.deploying import deployer_plugin, log_event, rollback_model

    cfg = config_from(args)
    plugin = deployer_plugin(args.deployer)
    opts = plugin.check_target(cfg, repo=args.repo, url=args.url, name=args.name, protocol=args.protocol)
    registry = Path(cfg.workspace) / "registry"
    try:
        record = rollback_model(args.deployer, opts, args.to_version)
    except InputError:
        raise  # bad input (no such version, not supported) changes nothing: no event to log
    except FlywheelError as exc:
        log_event(registry, action="rollback", ok=False, deployer=args.deployer, name=args.name, reason=str(exc))
        raise
    log_event(
        registry,
        action="rollback",
        ok=True,
        deployer=args.deployer,
        model=record.model_path,
        version=record.version,
        endpoint=record.endpoint,
        previous_version=record.previous_version,
    )
    if args.json:
        print(json.dumps(vars(record), indent=2))
    else:
        print(f"{args.name} now serves version {record.version} at {record.endpoint}")
    return 0
