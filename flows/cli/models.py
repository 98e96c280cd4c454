"""Model verbs: the base-model catalogue and fine-tuning."""

from __future__ import annotations

import argparse
import json

from asr_flywheel.flows.cli._common import config_from, overrides


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("models", help="list the base-model catalogue (backend, decoder, SFT viability)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)
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


def cmd_models(args) -> int:
    from asr_flywheel.plugins.manager import Plugins

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


def cmd_train(args) -> int:
    from asr_flywheel.flows.steps import train

    result = train(
        args.split_dir,
        args.base,
        args.out,
        backend=args.backend,
        method=args.method,
        hyperparameters=overrides(args),
        config=config_from(args),
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
