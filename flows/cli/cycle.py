"""Cycle verbs: one full cycle as a Prefect flow, and the offline demo."""

from __future__ import annotations

import argparse
import json

from asr_flywheel.cycle import WorkspaceBusyError, require_writable_dir
from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from, ensure_prefect_server, pin_cpu_numerics, prefect_env_defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "cycle",
        help="run one full cycle as a Prefect flow (local server if PREFECT_API_URL is set, else an ephemeral one)",
    )
    p.add_argument("manifest")
    p.add_argument("--base", help="base model when the registry has no champion (default from config)")
    p.add_argument("--backend", help="nemo or hf (default: from the base model)")
    p.add_argument("--workspace", help="workspace directory (default from config)")
    p.add_argument("--force-finetune", metavar="REASON", help="proceed past a failed gate (recorded)")
    p.add_argument(
        "--deploy",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="deploy a KEEP model with the configured deployer (default from config)",
    )
    p.add_argument(
        "--wait",
        action="store_true",
        help="queue behind a cycle of the same workspace that is running (default: refuse, naming it; exit 2)",
    )
    p.set_defaults(func=cmd_cycle)
    p = sub.add_parser("demo", help="run the offline demo on the bundled clinical example")
    p.add_argument("--workspace", help="workspace directory (default from config: ./workspace)")
    p.add_argument(
        "--quick",
        action="store_true",
        help="the same two cycles on fewer rows and epochs (8 per term, 450 replay rows, 4 and 1 epochs)",
    )
    p.add_argument(
        "--realistic",
        action="store_true",
        help="the two cycles on flite/Festival voices, every clip judged, from the realistic base (about 20 min)",
    )
    p.set_defaults(func=cmd_demo)


def cmd_cycle(args) -> int:
    cfg = config_from(args)
    require_writable_dir(args.workspace or cfg.workspace, "--workspace")  # before any server starts
    prefect_env_defaults(args.workspace or cfg.workspace)
    from asr_flywheel.flows.cycle import cycle_inputs, flywheel_cycle, preflight

    inputs = cycle_inputs(
        cfg,
        manifest=args.manifest,
        workspace=args.workspace,
        base_model=args.base,
        backend=args.backend,
        deploy_model=args.deploy,
    )
    preflight(inputs, cfg)
    ensure_prefect_server()  # only now: bad input has exited 2 without starting anything

    state = flywheel_cycle(
        manifest=args.manifest,
        base_model=args.base,
        backend=args.backend,
        workspace=args.workspace,
        config_path=args.config,
        force_finetune_reason=args.force_finetune,
        deploy_model=args.deploy,
        queue=args.wait,
        return_state=True,
    )
    if state.is_cancelled():  # another cycle of this workspace runs: the run is Cancelled, never Failed
        raise WorkspaceBusyError(state.message or "another cycle of this workspace is running")
    result = state.result()  # raises what failed the flow run
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def cmd_demo(args) -> int:
    if args.quick and args.realistic:
        raise InputError("--quick and --realistic are two different demos: choose one")
    cfg = config_from(args)
    require_writable_dir(args.workspace or cfg.workspace, "--workspace")
    pin_cpu_numerics()  # the demo's numbers are the README's: the same on any AVX2 host
    prefect_env_defaults(args.workspace or cfg.workspace)
    ensure_prefect_server()
    from asr_flywheel.flows.demo import FULL, QUICK, REALISTIC, run_demo

    profile = QUICK if args.quick else REALISTIC if args.realistic else FULL
    run_demo(args.workspace or cfg.workspace, cfg, profile=profile)
    return 0
