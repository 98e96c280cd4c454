"""Recipe verbs: make the general-English base model the demo starts from (issue 9 §2)."""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "base-model",
        help="make (or reuse) the general-English tiny NeMo base: synthesise the corpus, pretrain, report held-out WER",
    )
    p.add_argument("--workspace", help="workspace directory (default from config: ./workspace)")
    p.add_argument("--seed", type=int, help="recipe seed (default 1234)")
    p.add_argument("--steps", type=int, help="pretraining steps (default 700)")
    p.add_argument("--train-sentences", type=int, help="general-English training sentences (default 3000)")
    p.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--export", metavar="DIR", help="also copy the model and its recipe record into DIR")
    p.add_argument("--json", action="store_true", help="print the recipe record as JSON")
    p.set_defaults(func=cmd_base_model)


def _recipe(args):
    from dataclasses import replace

    from asr_flywheel.backends.nemo.base_recipe import BaseRecipe

    flags = {"seed": "--seed", "max_steps": "--steps", "n_train": "--train-sentences"}
    changes = {"seed": args.seed, "max_steps": args.steps, "n_train": args.train_sentences}
    bad = [f"{flags[k]} must be positive, got {v}" for k, v in changes.items() if v is not None and v < 1]
    if args.workers < 1:
        bad.append(f"--workers must be at least 1, got {args.workers}")
    if bad:
        raise InputError("; ".join(bad))
    return replace(BaseRecipe(), **{k: v for k, v in changes.items() if v is not None})


def cmd_base_model(args) -> int:
    from asr_flywheel.backends.nemo.base_recipe import MODEL_FILE, RECORD_FILE, make_base_model
    from asr_flywheel.cycle import require_writable_dir

    recipe = _recipe(args)
    workspace = Path(args.workspace or config_from(args).workspace)
    require_writable_dir(workspace, "--workspace")  # before minutes of synthesis and pretraining
    result = make_base_model(workspace, recipe, workers=args.workers)
    if args.export:
        out = Path(args.export)
        out.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(result.model_path, out / MODEL_FILE)
        shutil.copyfile(result.record_path, out / RECORD_FILE)
    if args.json:
        print(json.dumps(result.record, indent=2))
        return 0
    rec = result.record
    print(f"base model: {result.model_path} ({'cached: same recipe hash' if result.cached else 'made now'})")
    print(f"recipe hash: {rec['recipe_hash']}  corpus hash: {rec['corpus_hash'][:16]}  seed: {rec['recipe']['seed']}")
    print(f"text source: {rec['text_source']}")
    wer = rec["heldout_general"]
    print(
        f"held-out general-English WER: {wer['wer']:.3f} "
        f"(mean per row; corpus-level {wer['wer_corpus']:.3f}; n={wer['rows']})"
    )
    print(f"timings: {rec['timings_s']}")
    if args.export:
        print(f"exported to {args.export}")
    return 0
