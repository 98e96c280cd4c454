"""Recipe verbs: make the general-English base model the demo starts from.

The recipe is a plugin (`register_base_recipes`); this verb only maps flags to its settings and prints its record.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.flows.cli._common import config_from

DEFAULT_RECIPE = "nemo-general-english"
#: flag → the recipe setting it overrides.
OVERRIDES = {"seed": "seed", "steps": "max_steps", "train_sentences": "n_train", "lr": "lr", "threads": "threads"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "base-model",
        help="make (or reuse) the general-English tiny base: synthesise the corpus, pretrain, report held-out WER",
    )
    p.add_argument("--recipe", default=DEFAULT_RECIPE, help=f"base-model recipe plugin (default {DEFAULT_RECIPE})")
    p.add_argument("--workspace", help="workspace directory (default from config: ./workspace)")
    p.add_argument("--seed", type=int, help="recipe seed (default: the recipe's, 1234)")
    p.add_argument("--steps", type=int, help="pretraining steps (default: the recipe's)")
    p.add_argument("--train-sentences", type=int, help="general-English training sentences (default: the recipe's)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: the recipe's, 1)")
    p.add_argument("--corpus", help="corpus profile: realistic (flite/Festival, the default) or espeak")
    p.add_argument(
        "--init-from",
        metavar="FOLDER",
        help="continue from an earlier base of this recipe (a folder under examples/, e.g. bases/espeak)",
    )
    p.add_argument("--workers", type=int, default=2, help="parallel synthesis processes")
    p.add_argument("--export", metavar="DIR", help="also copy the model and its recipe record into DIR")
    p.add_argument("--json", action="store_true", help="print the recipe record as JSON")
    p.set_defaults(func=cmd_base_model)


def _overrides(args) -> dict:
    overrides = {setting: getattr(args, flag) for flag, setting in OVERRIDES.items() if getattr(args, flag) is not None}
    bad = [
        f"--{f.replace('_', '-')} must be positive, got {v}"
        for f in OVERRIDES
        if (v := getattr(args, f)) is not None and (v <= 0 if isinstance(v, float) else v < 1)
    ]
    overrides |= {k: v for k in ("corpus", "init_from") if (v := getattr(args, k, None))}
    if args.workers < 1:
        bad.append(f"--workers must be at least 1, got {args.workers}")
    if bad:
        raise InputError("; ".join(bad))
    return overrides


def cmd_base_model(args) -> int:
    from asr_flywheel.cycle import require_writable_dir
    from asr_flywheel.plugins.manager import Plugins

    overrides = _overrides(args)
    recipe = Plugins().base_recipe(args.recipe)
    recipe.check_overrides(overrides)
    workspace = Path(args.workspace or config_from(args).workspace)
    require_writable_dir(workspace, "--workspace")  # before minutes of synthesis and pretraining
    if args.export:
        require_writable_dir(args.export, "--export")
    # progress goes to stderr with --json, so stdout is the record alone (parseable)
    log = (lambda line: print(line, file=sys.stderr, flush=True)) if args.json else print
    made = recipe.make(workspace, overrides=overrides, workers=args.workers, log=log)
    if args.export:
        recipe.export(made, Path(args.export))
    if args.json:
        print(json.dumps(made.record, indent=2))
        return 0
    rec = made.record
    print(f"base model: {made.model_path} ({'cached: same recipe hash' if made.cached else 'made now'})")
    print(f"recipe: {made.recipe}  hash: {made.recipe_hash}  corpus hash: {rec['corpus_hash'][:16]}")
    print(f"text source: {rec['text_source']}")
    wer = rec["heldout_general"]
    print(
        f"held-out general-English WER: {made.heldout_wer:.3f} "
        f"(mean per row; corpus-level {wer['wer_corpus']:.3f}; n={wer['rows']})"
    )
    print(f"timings: {rec['timings_s']}")
    if args.export:
        print(f"exported to {args.export}")
    return 0
