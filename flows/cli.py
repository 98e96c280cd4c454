"""`flywheel` — the human entry point. Every verb is a thin call into the functions the flows use.

The CLI lives in `flows/` because it is the outermost layer (it may call core, plugins and flows);
Prefect, torch, NeMo and transformers are imported only inside the verbs that need them, so
`flywheel --help`, `validate`, `score`, `gate`, `split` and `decide` start fast.

Exit codes: 0 success, 2 bad input (every problem listed), 1 any other failure.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.errors import FlywheelError, InputError


def _config(args) -> FlywheelConfig:
    return load_config(getattr(args, "config", None))


def _print_problems(err: InputError, as_json: bool) -> None:
    if as_json:
        print(json.dumps([p.to_dict() for p in err.problems], ensure_ascii=False, indent=2))
    print(err.render(), file=sys.stderr)


# --- core verbs --------------------------------------------------------------------------------------------


def cmd_validate(args) -> int:
    from asr_flywheel.validation import validate_manifest

    cfg = _config(args)
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
        _print_problems(err, args.json)
    return 2


def cmd_score(args) -> int:
    from asr_flywheel.hyps import align_hyps, read_hyps
    from asr_flywheel.scoring import score_manifest, write_score_outputs
    from asr_flywheel.validation import load_manifest

    cfg = _config(args)
    manifest = load_manifest(args.manifest, cfg, check_audio=args.audio_check)
    hyps = align_hyps(manifest, read_hyps(args.hyps), hyps_name=str(args.hyps))
    report = score_manifest(
        manifest, hyps, config=cfg, model_name=args.model_name, cycle=args.cycle, scope=args.scope, family=args.family
    )
    paths = write_score_outputs(report, args.out)
    m = report.metrics
    ker = "n/a" if m["ker"] is None else f"{m['ker']:.3f}"
    print(
        f"scored {m['n']} rows: WER {m['wer']:.3f}  CER {m['cer']:.3f}  KER {ker} (n={m['ker_n']})  SER {m['ser']:.3f}"
    )
    for kind, p in paths.items():
        print(f"  {kind}: {p}")
    return 0


def cmd_gate(args) -> int:
    from asr_flywheel.gate import evaluate_gate, history_records, is_first_eval, render_gate
    from asr_flywheel.scoring import load_metrics

    cfg = _config(args)
    metrics = load_metrics(args.metrics)
    history = history_records(args.history, "gate.json")
    first = args.first_eval if args.first_eval is not None else is_first_eval(history, metrics)
    result = evaluate_gate(
        metrics, cfg.gate, first_eval=first, priority=tuple(args.priority) if args.priority else None
    )
    if args.force_finetune is not None:
        result = result.force(args.force_finetune)
    out = Path(args.out) if args.out else Path(args.metrics).parent
    fio.write_json(out / "gate.json", result.to_dict())
    print(render_gate(result), end="")
    print(f"wrote {out / 'gate.json'}")
    return 0


def cmd_split(args) -> int:
    from asr_flywheel.split import split_manifest, write_split
    from asr_flywheel.validation import validate_manifest

    cfg = _config(args).replace("split", val_fraction=args.val_fraction, seed=args.seed)
    report = validate_manifest(args.manifest, cfg, check_audio=not args.no_audio_check)
    manifest = report.raise_if_invalid()
    priority = tuple(args.priority) if args.priority else cfg.gate.priority
    result = split_manifest(manifest, cfg.split, priority, min_priority_rows=cfg.gate.min_priority_rows)
    for w in result.warnings:
        print(f"warning: {w}", file=sys.stderr)
    durations = {a: i.duration for a, i in report.audio.items()}
    paths = write_split(manifest, result, cfg.split, args.out, durations)
    print(f"split {len(manifest)} rows: {len(result.train)} train, {len(result.validation)} validation")
    for cat, c in result.counts.items():
        print(f"  {cat}: {c['train']} train / {c['validation']} validation")
    for kind, p in paths.items():
        print(f"  {kind}: {p}")
    return 0


def cmd_decide(args) -> int:
    from asr_flywheel.decision import decide, render_decision
    from asr_flywheel.gate import history_records
    from asr_flywheel.scoring import load_metrics, load_per_sample

    cfg = _config(args)
    after_metrics = load_metrics(args.after)
    load_metrics(args.before)
    targets = tuple(args.targets) if args.targets else cfg.decision_targets
    result, _ = decide(
        load_per_sample(args.before),
        load_per_sample(args.after),
        cfg.decision,
        cfg.stats,
        targets=targets,
        history=history_records(args.history, "decision.json"),
        cycle=int(after_metrics.get("cycle", 0)),
        manifest_family=after_metrics.get("manifest_family", ""),
        require_significance=True if args.require_significance else None,
    )
    out = Path(args.out) if args.out else Path(args.after).parent
    fio.write_json(out / "decision.json", result.to_dict())
    print(render_decision(result), end="")
    print(f"wrote {out / 'decision.json'}")
    return 0


def cmd_compare(args) -> int:
    from asr_flywheel.compare import compare_samples
    from asr_flywheel.leaderboard import render_comparison
    from asr_flywheel.scoring import load_metrics, load_per_sample

    cfg = _config(args)
    b, a = load_metrics(args.before), load_metrics(args.after)
    cmp = compare_samples(
        load_per_sample(args.before),
        load_per_sample(args.after),
        cfg.stats,
        before_label=f"cycle {b.get('cycle', 'N')}",
        after_label=f"cycle {a.get('cycle', 'N+1')}",
    )
    text = render_comparison(cmp)
    if args.out:
        fio.write_text(args.out, text)
    print(text, end="")
    return 0


def cmd_models(args) -> int:
    from plugins.manager import Plugins

    models = Plugins().base_models()
    if args.json:
        print(json.dumps([m.to_dict() for m in models.values()], indent=2))
        return 0
    rows = [("base model", "backend", "decoder", "SFT", "family / notes")]
    for m in models.values():
        note = m.refusal_reason.split(".")[0] if m.refusal_reason else m.notes
        plugin = "" if m.plugin in ("catalogue", "") else f" [plugin: {m.plugin}]"
        rows.append((m.name, m.backend, str(m.decoder), str(m.sft), f"{m.family}{'; ' + note if note else ''}{plugin}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4])
    return 0


def _overrides(args) -> dict:
    """Hyperparameter overrides from the named flags and repeated `--set key=value` (values parsed as JSON)."""
    hp = {
        k: getattr(args, k)
        for k in ("epochs", "lr", "batch_size", "precision", "warmup_steps")
        if getattr(args, k, None) is not None
    }
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        try:
            hp[key] = json.loads(raw)
        except json.JSONDecodeError:
            hp[key] = raw
    return hp


def cmd_train(args) -> int:
    from flows.steps import train

    result = train(
        args.split_dir,
        args.base,
        args.out,
        backend=args.backend,
        method=args.method,
        hyperparameters=_overrides(args),
        config=_config(args),
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=args.strategy,
    )
    print(f"model: {result.model_path}")
    print(f"run info: {result.run_info_path}")
    metrics = result.run_info.get("metrics", {})
    if metrics:
        print("end-of-train metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    if result.container_command:
        print(f"equivalent container command:\n  {result.container_command}")
    return 0


def cmd_eval(args) -> int:
    from flows.steps import evaluate

    res = evaluate(
        args.manifest,
        args.model,
        args.out,
        config=_config(args),
        batch_size=args.batch_size,
        backend=args.backend,
        cycle=args.cycle,
        scope=args.scope,
        progress=_progress_bar("transcribing"),
    )
    m = res.report.metrics
    ker = "n/a" if m["ker"] is None else f"{m['ker']:.3f}"
    print(f"\nscored {m['n']} rows: WER {m['wer']:.3f}  CER {m['cer']:.3f}  KER {ker}  SER {m['ser']:.3f}")
    for kind, p in res.paths.items():
        print(f"  {kind}: {p}")
    return 0


def _progress_bar(label: str):
    def update(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return update


def prefect_env_defaults() -> None:
    """Settings Prefect reads at import time: offline-friendly and patient with a cold ephemeral server."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")


def cmd_cycle(args) -> int:
    prefect_env_defaults()
    from flows.cycle import flywheel_cycle

    result = flywheel_cycle(
        manifest=args.manifest,
        base_model=args.base,
        backend=args.backend,
        workspace=args.workspace,
        config_path=args.config,
        force_finetune_reason=args.force_finetune,
        deploy_model=args.deploy,
    )
    print(json.dumps(result, indent=2))
    return 0


def cmd_publish(args) -> int:
    prefect_env_defaults()
    from flows.events import publish

    pub = publish(args.manifest, _config(args), force=args.force)
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
    from flows.events import watch

    cfg = _config(args)
    manifests = args.manifests or list(cfg.cycle.watch)
    if not manifests:
        raise InputError("nothing to watch: name manifests or set `[cycle] watch` in the configuration")
    watch(manifests, cfg, interval=args.interval, once=args.once)
    return 0


def cmd_server(args) -> int:
    prefect_env_defaults()
    from flows import server

    cfg = _config(args)
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
    print("  flywheel deploy && prefect worker start --pool flywheel-pool")
    return 0


def cmd_deploy(args) -> int:
    prefect_env_defaults()
    from flows import server
    from flows.events import api_url

    url = api_url()
    server.prepare(url)
    print(server.deploy(url, Path(os.environ.get("PREFECT_HOME", Path.home() / ".prefect"))).stdout[-3000:])
    return 0


def cmd_demo(args) -> int:
    prefect_env_defaults()
    from flows.demo import run_demo

    cfg = _config(args)
    run_demo(args.workspace or cfg.workspace, cfg)
    return 0


# --- parser --------------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flywheel", description=__doc__.split("\n")[0])
    parser.add_argument("--config", help="TOML configuration (default: $FLYWHEEL_CONFIG or ./flywheel.toml)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("validate", help="check a manifest; list every bad row (exit 2 if any)")
    p.add_argument("manifest")
    p.add_argument("--json", action="store_true", help="print problems as a JSON list on stdout")
    p.add_argument("--no-audio-check", action="store_true", help="skip reading audio headers")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("score", help="score hypotheses against a manifest; write per-cycle files")
    p.add_argument("manifest")
    p.add_argument("--hyps", required=True, help='JSONL of {"audio_filepath": ..., "hyp": ...}')
    p.add_argument("--out", required=True)
    p.add_argument("--cycle", type=int, default=0)
    p.add_argument("--model-name", default="unknown")
    p.add_argument("--scope", default="all rows", help="label for the rows scored (e.g. 'held-out rows')")
    p.add_argument("--family", help="manifest family id (default: the manifest's absolute path)")
    p.add_argument("--audio-check", action="store_true", help="also check audio headers (not needed to score)")
    p.set_defaults(func=cmd_score)

    p = sub.add_parser("gate", help="apply the fixed gate to a metrics.json; write gate.json")
    p.add_argument("metrics")
    p.add_argument("--priority", nargs="+", help="priority categories (default from config: drug)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--first-eval",
        dest="first_eval",
        action="store_true",
        default=None,
        help="treat as the first evaluation of this manifest family",
    )
    g.add_argument(
        "--later-eval",
        dest="first_eval",
        action="store_false",
        help="treat as a later evaluation (default: decided from --history; first if none)",
    )
    p.add_argument("--history", help="directory searched for earlier gate.json records")
    p.add_argument("--out", help="directory for gate.json (default: next to METRICS)")
    p.add_argument("--force-finetune", metavar="REASON", help="proceed to fine-tuning past a failed gate (recorded)")
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("split", help="term-aware train/validation split")
    p.add_argument("manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--val-fraction", type=float)
    p.add_argument("--seed", type=int)
    p.add_argument("--priority", nargs="+")
    p.add_argument("--no-audio-check", action="store_true")
    p.set_defaults(func=cmd_split)

    p = sub.add_parser("decide", help="apply the decision table to cycle N vs N+1; write decision.json")
    p.add_argument("before", help="cycle N metrics.json (per_sample.jsonl must sit next to it)")
    p.add_argument("after", help="cycle N+1 metrics.json on held-out rows")
    p.add_argument("--targets", nargs="+", help="targeted categories (default: the gate's priority)")
    p.add_argument("--history", help="directory searched for earlier decision.json records (for PLATEAU)")
    p.add_argument(
        "--require-significance",
        action="store_true",
        help="INSUFFICIENT_EVIDENCE when the CI of the delta includes zero",
    )
    p.add_argument("--out", help="directory for decision.json (default: next to AFTER)")
    p.set_defaults(func=cmd_decide)

    p = sub.add_parser("compare", help="render the cycle-comparison table for two metrics files")
    p.add_argument("before")
    p.add_argument("after")
    p.add_argument("--out", help="also write the markdown here")
    p.set_defaults(func=cmd_compare)

    p = sub.add_parser("models", help="list the base-model catalogue (backend, decoder, SFT viability)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("eval", help="transcribe a manifest with a model (batched) and score it")
    p.add_argument("manifest")
    p.add_argument("--model", required=True, help="catalogue name, .nemo file or Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=8, help="8 suits CPUs; raise to 32+ on a GPU")
    p.add_argument("--backend", help="force a backend (default: from the catalogue or the model files)")
    p.add_argument("--cycle", type=int, default=0)
    p.add_argument("--scope", default="all rows")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("train", help="fine-tune a base model on a split directory (stock SFT)")
    p.add_argument("split_dir", help="directory with train.jsonl and validation.jsonl (from `flywheel split`)")
    p.add_argument("--base", required=True, help="catalogue name, .nemo file or Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--backend", choices=None, help="nemo or hf (default: from the base model)")
    p.add_argument("--method", default="sft", help="sft (adapters are refused for TDT/RNNT)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--precision", help="bf16-mixed (default), 32; fp16-mixed is refused for TDT")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="any other hyperparameter (repeatable)")
    p.add_argument("--devices", default=1, help="Lightning devices (int or 'auto')")
    p.add_argument("--num-nodes", type=int, default=1)
    p.add_argument("--strategy", default="auto", help="Lightning strategy, e.g. ddp")
    p.set_defaults(func=cmd_train)

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
    p.set_defaults(func=cmd_cycle)

    p = sub.add_parser("publish", help="publish a flywheel.manifest.grown event for a manifest (once per version)")
    p.add_argument("manifest")
    p.add_argument("--force", action="store_true", help="send again even if this version was published")
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("watch", help="publish growth events whenever watched manifests change")
    p.add_argument("manifests", nargs="*", help="default: `[cycle] watch` from the configuration")
    p.add_argument("--interval", type=float, default=30.0)
    p.add_argument("--once", action="store_true", help="check once and exit")
    p.set_defaults(func=cmd_watch)

    p = sub.add_parser("server", help="run a local Prefect server (SQLite) for the UI, deployments and events")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("--port", type=int, default=4200)
    p.add_argument("--home", help="PREFECT_HOME for the server (default: <workspace>/prefect)")
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("deploy", help="create the deployments in prefect.yaml on the server at PREFECT_API_URL")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("demo", help="run the offline demo on the bundled clinical example")
    p.add_argument("--workspace", help="workspace directory (default from config: ./workspace)")
    p.set_defaults(func=cmd_demo)

    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except InputError as err:
        print(err.render(limit=None), file=sys.stderr)
        return err.exit_code
    except FlywheelError as err:
        print(f"error: {err}", file=sys.stderr)
        return err.exit_code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
