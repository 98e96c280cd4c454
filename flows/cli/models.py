"""Model verbs: the base-model catalogue and fine-tuning."""

from __future__ import annotations

import argparse
import json
import sys

from asr_flywheel.flows.cli._common import config_from, overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the base-model catalogue (backend, decoder, SFT viability)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
    p = sub.add_parser("train", help="fine-tune a base model on a split directory (stock SFT)")
    p.add_argument("split_dir", help="directory with train.jsonl and validation.jsonl (from `flywheel split`)")
    p.add_argument("--base", required=True, help="catalogue name, .nemo file or Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--backend", help="nemo or hf (default: [cycle] backend, else from the base model)")
    p.add_argument("--method", default="sft", help="sft (adapters are refused for TDT/RNNT)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--warmup-steps", type=int)
    p.add_argument("--precision", help="bf16-mixed (default), 32; fp16-mixed is refused for TDT")
    p.add_argument(
        "--set",
        action="append",
        metavar="KEY=VALUE",
        help="any other hyperparameter (repeatable); flags override the file's [hyperparameters]",
    )
    p.add_argument("--devices", help="Lightning devices (int or 'auto'; default: [cycle] devices)")
    p.add_argument("--num-nodes", type=int, help="default: [cycle] num_nodes")
    p.add_argument("--strategy", help="Lightning strategy, e.g. ddp (default: [cycle] strategy)")
    p.set_defaults(func=cmd_train)


def cmd_models(args) -> int:
    from asr_flywheel.plugins.manager import Plugins

    cfg = config_from(args)
    plugins = Plugins()
    models = list(plugins.base_models().values())
    configured = cfg.cycle.base_model
    if args.json:
        print(json.dumps([{**m.to_dict(), "configured_base": m.name == configured} for m in models], indent=2))
    else:
        print(_table(models, configured))
        source = cfg.source.path if cfg.source else "the built-in defaults"
        print(f"* the cycle's base model ([cycle] base_model in {source})")
    for broken in plugins.broken():
        print(f"warning: plugin {broken} — its models and backends are unavailable", file=sys.stderr)
    return 0


def _table(models: list, configured: str) -> str:
    rows = [("base model", "backend", "decoder", "SFT", "family / notes")]
    for m in models:
        note = m.refusal_reason.split(".")[0] if m.refusal_reason else m.notes
        plugin = "" if m.plugin in ("catalogue", "") else f" [plugin: {m.plugin}]"
        name = f"{m.name} *" if m.name == configured else m.name
        rows.append((name, m.backend, str(m.decoder), str(m.sft), f"{m.family}{'; ' + note if note else ''}{plugin}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    return "\n".join("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[4] for r in rows)


def cmd_train(args) -> int:
    from asr_flywheel.flows.model_steps import train, train_settings

    cfg = config_from(args)
    settings = train_settings(
        cfg,
        args.base,
        backend=args.backend,
        method=args.method,
        flags=overrides(args),
        devices=args.devices,
        num_nodes=args.num_nodes,
        strategy=args.strategy,
    )
    result = train(
        split_dir=args.split_dir,
        base=args.base,
        out_dir=args.out,
        backend=settings.backend,
        method=args.method,
        hyperparameters=settings.hyperparameters,
        config=cfg,
        devices=settings.devices,
        num_nodes=settings.num_nodes,
        strategy=settings.strategy,
    )
    print(f"model: {result.model_path}")
    print(f"run info: {result.run_info_path}")
    metrics = result.run_info.get("metrics", {})
    if metrics:
        print("end-of-train metrics: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if isinstance(v, float)))
    if result.container_command:
        print(f"equivalent container command:\n  {result.container_command}")
    return 0
