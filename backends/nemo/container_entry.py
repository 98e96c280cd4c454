"""Runs inside NVIDIA's NeMo container, around the unmodified stock `speech_to_text_finetune.py`.

Standalone on purpose (only NeMo, Lightning and the standard library): the flywheel is not installed in the
container. The generated `container_command.sh` copies this file next to the manifests and calls it twice:

* `prepare`: the stock script assigns `model.spec_augment`, an attribute the ASR models never read (their
  forward() applies `spec_augmentation`, built from `cfg.spec_augment` when a model is restored). So the masks
  of the in-process run are written into a copy of the base model's config here, and the stock script is
  started from that copy with `model.spec_augment=null`.
* `launch`: the stock script never seeds. This seeds exactly like the in-process run
  (`seed_everything(seed, workers=True)`, which also exports PL_GLOBAL_SEED for DDP ranks) and then runs the
  stock script unchanged, with the Hydra overrides after `--`.
"""

from __future__ import annotations

import argparse
import json
import runpy
import sys


def prepare(base: str, out: str, spec_augment: dict | None) -> str:
    """Save `base` (a .nemo file or a hub name) to `out` with `spec_augment` as its SpecAugment (None: none)."""
    from nemo.collections.asr.models import ASRModel
    from omegaconf import OmegaConf, open_dict

    if base.endswith(".nemo"):
        model = ASRModel.restore_from(restore_path=base, map_location="cpu")
    else:
        model = ASRModel.from_pretrained(model_name=base, map_location="cpu")
    with open_dict(model.cfg):
        model.cfg.spec_augment = OmegaConf.create(spec_augment) if spec_augment else None
    model.spec_augmentation = model.from_config_dict(model.cfg.spec_augment) if spec_augment else None
    model.save_to(out)
    return out


def launch(seed: int, script: str, hydra_args: list[str]) -> None:
    from lightning.pytorch import seed_everything

    seed_everything(seed, workers=True)
    sys.argv = [script, *hydra_args]
    runpy.run_path(script, run_name="__main__")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    hydra_args: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, hydra_args = argv[:cut], argv[cut + 1 :]
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("prepare", help="write the base model with the run's SpecAugment")
    p.add_argument("--base", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--spec-augment", default="null", help="JSON of the spec_augment section, or null")
    p = sub.add_parser("launch", help="seed, then run the stock script with the Hydra overrides after --")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--script", required=True)
    args = ap.parse_args(argv)
    if args.cmd == "prepare":
        prepare(args.base, args.out, json.loads(args.spec_augment))
    else:
        launch(args.seed, args.script, hydra_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
