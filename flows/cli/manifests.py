"""Manifest verbs: check a manifest, announce its growth, watch for growth."""

from __future__ import annotations

import argparse
import sys

from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from, prefect_env_defaults, print_problems


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("validate", help="check a manifest; list every bad row (exit 2 if any)")
    p.add_argument("manifest")
    p.add_argument("--json", action="store_true", help="print problems as a JSON list on stdout")
    p.add_argument("--no-audio-check", action="store_true", help="skip reading audio headers")
    p.set_defaults(func=cmd_validate)
    p = sub.add_parser("publish", help="publish a flywheel.manifest.grown event for a manifest (once per version)")
    p.add_argument("manifest")
    p.add_argument("--force", action="store_true", help="send again even if this version was published")
    p.set_defaults(func=cmd_publish)
    p = sub.add_parser("watch", help="publish growth events whenever watched manifests change")
    p.add_argument("manifests", nargs="*", help="default: `[cycle] watch` from the configuration")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--once", action="store_true", help="check once and exit")
    p.set_defaults(func=cmd_watch)


def cmd_validate(args) -> int:
    from asr_flywheel.validation import validate_manifest

    cfg = config_from(args)
    report = validate_manifest(args.manifest, cfg, check_audio=not args.no_audio_check)
    if report.ok:
        if args.json:
            print("[]")
        print(
            f"OK: {args.manifest}: {len(report.manifest)} rows valid"
            f"{'' if args.no_audio_check else ' (audio checked)'}; version {report.manifest.version}",
            file=sys.stderr if args.json else sys.stdout,
        )
        return 0
    try:
        report.raise_if_invalid()
    except InputError as err:
        print_problems(err, args.json)
    return 2


def cmd_publish(args) -> int:
    prefect_env_defaults()
    from asr_flywheel.flows.events import publish

    pub = publish(args.manifest, config_from(args), force=args.force)
    if pub.status == "unchanged":
        print(f"{args.manifest}: version {pub.version[:12]} was already published; no event (use --force to resend)")
    else:
        print(
            f"published flywheel.manifest.grown for {pub.resource_id}: {pub.rows} rows (+{pub.added_rows}), "
            f"version {pub.version[:12]}, event {pub.event_id}"
        )
    return 0


def cmd_watch(args) -> int:
    prefect_env_defaults()
    from asr_flywheel.flows.events import watch

    cfg = config_from(args)
    manifests = args.manifests or list(cfg.cycle.watch)
    if not manifests:
        raise InputError("nothing to watch: name manifests or set `[cycle] watch` in the configuration")
    watch(manifests, cfg, interval=args.interval, once=args.once)
    return 0
