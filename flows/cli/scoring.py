"""Scoring verbs: score hypotheses, gate, split, decide, compare, and transcribe-and-score (eval).

Each verb checks its arguments and output location first, then calls the step the flow calls (`flows.steps`):
the files a verb writes are the files that step writes inside a cycle.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import require_writable_dir
from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from, progress_bar


def _int_at_least(text: str, low: int) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
    return value


def positive_int(text: str) -> int:
    return _int_at_least(text, 1)


def non_negative_int(text: str) -> int:
    return _int_at_least(text, 0)


def fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {value}")
    return value


def known_categories(cfg: FlywheelConfig, names: list[str] | None, flag: str) -> tuple[str, ...] | None:
    """Categories named on the command line must be in the configured vocabulary (a typo would silently
    select no rows and change the outcome)."""
    if not names:
        return None
    unknown = [c for c in names if c not in cfg.manifest.categories]
    if unknown:
        raise InputError(
            f"{flag}: unknown categor{'y' if len(unknown) == 1 else 'ies'} {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(cfg.manifest.categories)}; extend `[manifest] categories` in the configuration)"
        )
    return tuple(names)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("score", help="score hypotheses against a manifest; write per-cycle files")
    p.add_argument("manifest")
    p.add_argument("--hyps", required=True, help='JSONL of {"audio_filepath": ..., "hyp"/"pred_text": ...}')
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--cycle", type=non_negative_int, default=0)
    p.add_argument("--model-name", default="unknown")
    p.add_argument("--scope", default="all rows", help="label for the rows scored (e.g. 'held-out rows')")
    p.add_argument("--family", help="manifest family id (default: the manifest's absolute path)")
    p.add_argument("--audio-check", action="store_true", help="also check audio headers (not needed to score)")
    p.set_defaults(func=cmd_score)
    p = sub.add_parser("gate", help="apply the fixed gate to a metrics.json; write gate.json and gate.md")
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
    p.add_argument("--out", help="directory for gate.json / gate.md (default: next to METRICS)")
    p.add_argument("--force-finetune", metavar="REASON", help="proceed to fine-tuning past a failed gate (recorded)")
    p.set_defaults(func=cmd_gate)
    p = sub.add_parser("split", help="term-aware train/validation split")
    p.add_argument("manifest")
    p.add_argument("--out", required=True)
    p.add_argument("--val-fraction", type=fraction, help="validation share, strictly between 0 and 1")
    p.add_argument("--seed", type=int)
    p.add_argument("--holdout-terms", type=non_negative_int, help="hold out every row of N whole terms")
    p.add_argument(
        "--holdout-voices",
        type=_voices_or_count,
        help="hold out every row of these voices (comma-separated ids) or of N voices drawn by the seed",
    )
    p.add_argument(
        "--min-heldout-per-term", type=non_negative_int, help="at least K held-out rows per term (one stays in train)"
    )
    p.add_argument("--priority", nargs="+")
    p.add_argument("--no-audio-check", action="store_true")
    p.set_defaults(func=cmd_split)
    p = sub.add_parser("decide", help="apply the decision table to cycle N vs N+1; write decision.json/.md")
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
    p.add_argument("--out", help="also write the markdown to this file")
    p.set_defaults(func=cmd_compare)
    p = sub.add_parser("eval", help="transcribe a manifest with a model (batched) and score it")
    p.add_argument("manifest")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--model", help="catalogue name, .nemo file or Hugging Face model directory")
    what.add_argument(
        "--endpoint",
        dest="model",
        metavar="URL",
        help="a served model: triton://HOST:PORT/NAME[/VERSION], tritongrpc://..., riva://HOST:PORT or rivas://",
    )
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--offline-hyps", help="with --endpoint: report divergence from these offline transcripts")
    p.add_argument("--batch-size", type=positive_int, default=8, help="8 suits CPUs; raise to 32+ on a GPU")
    p.add_argument("--backend", help="force a backend (default: from the catalogue or the model files)")
    p.add_argument("--cycle", type=non_negative_int, default=0)
    p.add_argument("--scope", default="all rows")
    p.add_argument(
        "--boost",
        metavar="TERMS",
        help="decode biased toward these phrases: a file with one phrase a line, or 'manifest' (its terms)",
    )
    p.add_argument("--boost-alpha", type=float, help="boost weight (default: [boost] alpha); 0 turns boosting off")
    p.set_defaults(func=cmd_eval)


def print_paths(paths) -> None:
    for p in paths:
        print(f"  {Path(p).name}: {p}")


def cmd_score(args) -> int:
    from asr_flywheel.flows import steps
    from asr_flywheel.hyps import load_hyps
    from asr_flywheel.validation import load_manifest

    cfg = config_from(args)
    out = require_writable_dir(args.out)
    if Path(args.hyps).is_dir():
        raise InputError(f"--hyps {args.hyps} is a directory; give the hypotheses JSONL file")
    manifest = load_manifest(args.manifest, cfg, check_audio=args.audio_check)
    record = steps.score(
        out=out,
        manifest=manifest,
        hyps=load_hyps(args.hyps, manifest),
        model_ref=args.model_name,
        cfg=cfg,
        cycle=args.cycle,
        scope=args.scope,
        family=args.family,
    ).record
    print(record.summary())
    print_paths(record.files)
    return 0


def cmd_gate(args) -> int:
    from asr_flywheel.flows import steps
    from asr_flywheel.gate import history_records

    cfg = config_from(args)
    priority = known_categories(cfg, args.priority, "--priority")
    out = require_writable_dir(args.out or Path(args.metrics).parent)
    record = steps.gate(
        metrics_path=args.metrics,
        out_dir=out,
        cfg=cfg,
        history=history_records(args.history, "gate.json"),
        first_eval=args.first_eval,
        priority=priority,
        force_reason=args.force_finetune,
    )
    print(record.markdown, end="")
    print(f"wrote {record.gate_json} and {record.gate_md}")
    return 0


def _voices_or_count(value: str) -> int | tuple[str, ...]:
    if value.strip().isdigit():
        return int(value)
    voices = tuple(v.strip() for v in value.split(",") if v.strip())
    if not voices:
        raise argparse.ArgumentTypeError("give voice ids (flite:rms,festival:kal) or a number of voices")
    return voices


def cmd_split(args) -> int:
    from asr_flywheel.flows import steps
    from asr_flywheel.validation import validate_manifest

    cfg = config_from(args).replace(
        "split",
        val_fraction=args.val_fraction,
        seed=args.seed,
        holdout_terms=args.holdout_terms,
        min_heldout_per_term=args.min_heldout_per_term,
        holdout_voices=args.holdout_voices,
    )
    priority = known_categories(cfg, args.priority, "--priority")
    out = require_writable_dir(args.out)
    report = validate_manifest(args.manifest, cfg, check_audio=not args.no_audio_check)
    report.raise_if_invalid()
    record = steps.split(report=report, out_dir=out, cfg=cfg, priority=priority)
    for w in record.warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(
        f"split {record.train_rows + record.validation_rows} rows: {record.train_rows} train, "
        f"{record.validation_rows} validation"
    )
    for cat, c in record.counts.items():
        print(f"  {cat}: {c['train']} train / {c['validation']} validation")
    print_paths(record.files)
    return 0


def cmd_decide(args) -> int:
    from asr_flywheel.flows import steps
    from asr_flywheel.gate import history_records

    cfg = config_from(args)
    targets = known_categories(cfg, args.targets, "--targets")
    out = require_writable_dir(args.out or Path(args.after).parent)
    record = steps.decide(
        before_metrics=args.before,
        after_metrics=args.after,
        out_dir=out,
        cfg=cfg,
        history=history_records(args.history, "decision.json"),
        targets=targets,
        require_significance=True if args.require_significance else None,
    )
    print(record.markdown, end="")
    print(f"wrote {record.decision_json} and {record.decision_md}")
    return 0


def cmd_compare(args) -> int:
    from asr_flywheel.flows import steps
    from asr_flywheel.leaderboard import render_comparison

    cfg = config_from(args)
    if args.out:
        require_writable_dir(Path(args.out).parent or Path("."), "--out's directory")
        if Path(args.out).is_dir():
            raise InputError(f"--out {args.out} is a directory; give a file name for the markdown")
    text = render_comparison(steps.compare(before_metrics=args.before, after_metrics=args.after, cfg=cfg))
    if args.out:
        fio.write_text(args.out, text)
    print(text, end="")
    return 0


def cmd_eval(args) -> int:
    from asr_flywheel.flows import parity
    from asr_flywheel.flows.steps import evaluate

    cfg = config_from(args).replace("boost", alpha=args.boost_alpha)  # range-checked like the file's value
    if args.boost_alpha is not None and not args.boost:
        raise InputError("--boost-alpha needs --boost TERMS (a phrase file, or 'manifest')")
    if args.offline_hyps:
        parity.offline_rows(args.manifest, args.offline_hyps, cfg)  # bad hyps fail before transcribing
    res = evaluate(
        args.manifest,
        args.model,
        args.out,
        config=cfg,
        batch_size=args.batch_size,
        backend=args.backend,
        cycle=args.cycle,
        scope=args.scope,
        progress=progress_bar("transcribing"),
        boost=args.boost,
    )
    print("\n" + res.record.summary())
    print_paths(res.record.files)
    if args.offline_hyps:
        report = parity.compare_with_offline(args.model, args.manifest, args.offline_hyps, res, cfg, args.out)
        print(f"served vs offline: {report.summary} (parity.md)")
    return 0
