"""The equivalent run of NVIDIA's stock script inside the NeMo container, for users who train there.

Host paths don't exist inside the container, so the manifests are rewritten into a *copy* (never in place)
whose audio paths live under `/workspace`, the mount point of the common host root. The copy is validated:
every path must map under the mount, and the row count must match the original.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.errors import InputError

NEMO_IMAGE = "nvcr.io/nvidia/nemo:25.11.01"
STOCK_SCRIPT = "/opt/NeMo/examples/asr/speech_to_text_finetune.py"
STOCK_CONFIG_PATH = "/opt/NeMo/examples/asr/conf/asr_finetune"
MOUNT = "/workspace"


def common_root(paths: list[str]) -> Path:
    root = Path(os.path.commonpath([os.path.abspath(p) for p in paths]))
    return root if root.is_dir() else root.parent


def to_container(path: str | Path, root: Path) -> str:
    rel = os.path.relpath(os.path.abspath(path), root)
    if rel.startswith(".."):
        raise InputError(f"{path} is outside the mounted directory {root}")
    return f"{MOUNT}/{rel}" if rel != "." else MOUNT


def rewrite_manifest(src: Path, dest: Path, root: Path) -> Path:
    rows = fio.read_jsonl(src)
    out = [{**r, "audio_filepath": to_container(r["audio_filepath"], root)} for r in rows]
    bad = [r["audio_filepath"] for r in out if not r["audio_filepath"].startswith(MOUNT + "/")]
    if bad or len(out) != len(rows):
        raise InputError(f"rewriting {src} for the container failed: {bad[:3]}")
    return fio.write_jsonl(dest, out)


def container_command(
    *, base: str, base_is_file: bool, train_manifest: Path, validation_manifest: Path, out_dir: Path, hp: dict
) -> str:
    """Write container copies of the manifests under out_dir/container/ and return the docker command."""
    audio = [r["audio_filepath"] for m in (train_manifest, validation_manifest) for r in fio.read_jsonl(m)]
    anchors = [*audio, str(out_dir)] + ([base] if base_is_file else [])
    root = common_root(anchors)
    cdir = out_dir / "container"
    train_c = rewrite_manifest(train_manifest, cdir / "train.jsonl", root)
    val_c = rewrite_manifest(validation_manifest, cdir / "validation.jsonl", root)
    init = f"init_from_nemo_model={to_container(base, root)}" if base_is_file else f"+init_from_pretrained_model={base}"
    overrides = [
        init,
        f"model.train_ds.manifest_filepath={to_container(train_c, root)}",
        f"model.validation_ds.manifest_filepath={to_container(val_c, root)}",
        f"model.train_ds.batch_size={hp['batch_size']}",
        f"model.validation_ds.batch_size={hp['batch_size']}",
        f"model.optim.lr={hp['lr']}",
        "model.optim.sched.name=CosineAnnealing",
        f"model.optim.sched.warmup_steps={hp['warmup_steps']}",
        f"trainer.max_epochs={hp['epochs']}",
        f"trainer.precision={hp['precision']}",
        f"trainer.gradient_clip_val={hp['gradient_clip_val']}",
        f"trainer.accumulate_grad_batches={hp['accumulate_grad_batches']}",
        "trainer.devices=-1",
        f"exp_manager.exp_dir={to_container(out_dir / 'container' / 'exp', root)}",
    ]
    if not hp.get("spec_augment", True):
        overrides += ["model.spec_augment.freq_masks=0", "model.spec_augment.time_masks=0"]
    docker = ["docker", "run", "--gpus", "all", "--rm", "--shm-size=16g", "-v", f"{root}:{MOUNT}"]
    if not base_is_file:
        docker += ["-e", "HF_TOKEN"]  # passed through by name from the host environment: never the value
    cmd = [
        *docker,
        NEMO_IMAGE,
        "python",
        STOCK_SCRIPT,
        f"--config-path={STOCK_CONFIG_PATH}",
        "--config-name=speech_to_text_finetune",
        *overrides,
    ]
    return " ".join(shlex.quote(c) for c in cmd)
