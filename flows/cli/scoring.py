"""Scoring verbs: score hypotheses, gate, split, decide, compare, and transcribe-and-score (eval)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.flows.cli._common import config_from, progress_bar


def register(sub: argparse._SubParsersAction) -> None:
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
    p = sub.add_parser("eval", help="transcribe a manifest with a model (batched) and score it")
    p.add_argument("manifest")
    p.add_argument("--model", required=True, help="catalogue name, .nemo file or Hugging Face model directory")
    p.add_argument("--out", required=True)
    p.add_argument("--batch-size", type=int, default=8, help="8 suits CPUs; raise to 32+ on a GPU")
    p.add_argument("--backend", help="force a backend (default: from the catalogue or the model files)")
    p.add_argument("--cycle", type=int, default=0)
    p.add_argument("--scope", default="all rows")
    p.set_defaults(func=cmd_eval)


def cmd_score(args) -> int:
    from asr_flywheel.hyps import align_hyps, read_hyps
    from asr_flywheel.scoring import score_manifest, write_score_outputs
    from asr_flywheel.validation import load_manifest

    cfg = config_from(args)
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

    cfg = config_from(args)
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

    cfg = config_from(args).replace("split", val_fraction=args.val_fraction, seed=args.seed)
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

    cfg = config_from(args)
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

    cfg = config_from(args)
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


def cmd_eval(args) -> int:
    from asr_flywheel.flows.steps import evaluate

    res = evaluate(
        args.manifest,
        args.model,
        args.out,
        config=config_from(args),
        batch_size=args.batch_size,
        backend=args.backend,
        cycle=args.cycle,
        scope=args.scope,
        progress=progress_bar("transcribing"),
    )
    m = res.report.metrics
    ker = "n/a" if m["ker"] is None else f"{m['ker']:.3f}"
    print(f"\nscored {m['n']} rows: WER {m['wer']:.3f}  CER {m['cer']:.3f}  KER {ker}  SER {m['ser']:.3f}")
    for kind, p in res.paths.items():
        print(f"  {kind}: {p}")
    return 0
