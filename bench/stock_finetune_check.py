#!/usr/bin/env python
"""Run the generated container plan with NeMo's real, unmodified stock script, here, on CPU.

    python bench/stock_finetune_check.py --nemo-repo PATH/TO/NeMo --split SPLIT_DIR --base MODEL.nemo

The NGC container cannot run on these machines, but its script can: `examples/asr/speech_to_text_finetune.py`
and its yaml are taken from a NeMo checkout. This writes the plan exactly as `NemoTrainer` does, maps the
`/workspace` paths back to the host, swaps the GPU-only settings (accelerator, bf16, pinned memory) for CPU
ones, runs the plan's `prepare` and seeded `launch` steps and its publish lines, then reads the published
`adapted_model.nemo` back and prints the settings it was trained with. Two training steps; a few minutes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from asr_flywheel.backends.nemo.container import write_container_run
from asr_flywheel.backends.nemo.recipe import DEFAULTS
from asr_flywheel.backends.training_common import fingerprint

CPU_SWAPS = {
    "trainer.accelerator=gpu": "trainer.accelerator=cpu",
    "trainer.precision=bf16-mixed": "trainer.precision=32",
    "model.train_ds.pin_memory=true": "model.train_ds.pin_memory=false",
    "model.validation_ds.pin_memory=true": "model.validation_ds.pin_memory=false",
}


def run(nemo_repo: Path, split: Path, base: Path, out: Path, hp: dict) -> Path:
    train, val = split / "train.jsonl", split / "validation.jsonl"
    plan = write_container_run(
        weights=str(base),
        base_is_file=True,
        train_manifest=train,
        validation_manifest=val,
        out_dir=out,
        hp=hp,
        fingerprint=fingerprint(str(base), hp, train),
        sample_rate=16000,
    )
    root = plan.train[plan.train.index("-v") + 1].split(":")[0]
    for name in ("train.jsonl", "validation.jsonl"):  # the container copies, pointed back at the host audio
        p = out / "container" / name
        p.write_text(p.read_text().replace("/workspace", root))
    entry = str(out / "container" / "container_entry.py")
    prepare = [a.replace("/workspace", root) for a in plan.prepare[plan.prepare.index("prepare") :]]
    subprocess.run([sys.executable, entry, *prepare], check=True)
    overrides = [CPU_SWAPS.get(o, o.replace("/workspace", root)) for o in plan.overrides]
    stock = nemo_repo / "examples" / "asr"
    script = str(stock / "speech_to_text_finetune.py")
    hydra = [f"--config-path={stock / 'conf' / 'asr_finetune'}", "--config-name=speech_to_text_finetune", *overrides]
    launch = [sys.executable, entry, "launch", "--seed", str(hp["seed"]), "--script", script, "--", *hydra]
    subprocess.run(launch, check=True, cwd=out)
    for line in plan.script.strip().splitlines()[-2:]:  # the publish step: cp + mv to adapted_model.nemo
        subprocess.run(line, shell=True, check=True)
    return out / "adapted_model.nemo"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--nemo-repo", type=Path, required=True, help="a NeMo checkout (for examples/asr/)")
    ap.add_argument("--split", type=Path, required=True, help="a split directory (train.jsonl, validation.jsonl)")
    ap.add_argument("--base", type=Path, required=True, help="a local .nemo base (e.g. a tiny CTC model)")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="stock_check_"))
    hp = {**DEFAULTS, "max_steps": 2, "epochs": 1, "batch_size": 8, "warmup_steps": 1, "time_masks": 3}
    model_path = run(args.nemo_repo, args.split, args.base, out, hp)

    from asr_flywheel.backends.nemo._runtime import load_asr_model

    m = load_asr_model(str(model_path))
    print(f"published {model_path} ({model_path.stat().st_size} bytes)")
    print("spec_augment:", dict(m.cfg.spec_augment), "applied:", m.spec_augmentation is not None)
    print("optim:", dict(m.cfg.optim.sched), "weight_decay", m.cfg.optim.weight_decay)
    ok = m.cfg.spec_augment.time_masks == 3 and m.cfg.optim.sched.min_lr == hp["min_lr"]
    print("OK" if ok else "MISMATCH")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
