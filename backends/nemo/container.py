"""The equivalent run of NVIDIA's stock script inside the NeMo container, for users who train there.

Equivalence is built, not hoped for: the Hydra overrides are the in-process run's own config sections
(`recipe.py`) flattened onto the keys the stock `speech_to_text_finetune.py` reads. Two things no stock key
reaches are done by `container_entry.py` around the unmodified script (SpecAugment, seeding), and the
result is copied to `adapted_model.nemo`, where the in-process run writes it. What still differs is listed
in `ContainerPlan.differences` and recorded in `training_run_info.json`.

Host paths don't exist inside the container, so the manifests are rewritten into a *copy* (never in place)
whose audio paths live under `/workspace`, the mount point of the common host root. The copy is validated:
every path must map under the mount, and the row count must match the original.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.backends.nemo import recipe
from asr_flywheel.errors import InputError

NEMO_IMAGE = "nvcr.io/nvidia/nemo:25.11.01"
STOCK_SCRIPT = "/opt/NeMo/examples/asr/speech_to_text_finetune.py"
STOCK_CONFIG_PATH = "/opt/NeMo/examples/asr/conf/asr_finetune"
STOCK_CONFIG_NAME = "speech_to_text_finetune"
MOUNT = "/workspace"
#: exp_manager's `name`: the stock run saves `<exp_dir>/<name>/checkpoints/<name>.nemo` at the end of training.
EXP_NAME = "adapted_model"
MODEL_FILE = "adapted_model.nemo"
ENTRY = Path(__file__).with_name("container_entry.py")

#: Always true of a container run, whatever the hyperparameters.
INHERENT_DIFFERENCES = (
    "logging only: the stock script adds exp_manager's TensorBoard logger and keeps the top-5 .ckpt files by "
    "val_wer; neither changes the weights (both runs save the last epoch's model)",
    f"software: the container's NeMo, torch and CUDA ({NEMO_IMAGE}) are not this run's versions, so the same "
    "seed does not give bit-identical weights",
)


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


def hydra_value(v) -> str:
    """A value in Hydra's override grammar (quoted unless it is a plain token)."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, list):
        return "[" + ",".join(hydra_value(x) for x in v) + "]"
    s = str(v)
    if re.fullmatch(r"[\w./:+-]+", s):
        return s
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


def flatten(prefix: str, section: dict) -> list[str]:
    out = []
    for k, v in section.items():
        if isinstance(v, dict):
            out += flatten(f"{prefix}.{k}", v)
        else:
            out.append(f"{prefix}.{k}={hydra_value(v)}")
    return out


@dataclass(frozen=True)
class Placement:
    """Where the run's files are, as the container sees them."""

    train: str
    validation: str
    exp_dir: str
    tokenizer_dir: str | None = None
    sample_rate: int | None = None


def stock_overrides(hp: dict, at: Placement, *, devices, num_nodes: int, strategy: str) -> list[str]:
    """Hydra overrides of the stock yaml that reproduce the in-process run (`+` for keys the yaml lacks)."""
    model = [f"model.sample_rate={at.sample_rate}"] if at.sample_rate else []
    model += [f"model.train_ds.manifest_filepath={hydra_value(at.train)}"]
    model += flatten("model.train_ds", recipe.train_ds_config(hp, on_gpu=True))
    model += [f"model.validation_ds.manifest_filepath={hydra_value(at.validation)}"]
    model += flatten("model.validation_ds", recipe.validation_ds_config(hp, on_gpu=True))
    model += flatten("model.optim", recipe.optim_config(hp))
    model.append("model.spec_augment=null")  # applied by container_entry.py prepare (see its docstring)
    if at.tokenizer_dir:
        model += [
            "model.tokenizer.update_tokenizer=true",
            f"model.tokenizer.dir={hydra_value(at.tokenizer_dir)}",
            f"model.tokenizer.type={hydra_value(hp['tokenizer_type'])}",
        ]
    trainer = flatten("trainer", recipe.trainer_config(hp, hp["precision"]))
    trainer += [
        "trainer.accelerator=gpu",
        f"trainer.devices={hydra_value(devices)}",
        f"trainer.num_nodes={num_nodes}",
        f"trainer.strategy={hydra_value(strategy)}",
    ]
    exp = [
        f"exp_manager.exp_dir={hydra_value(at.exp_dir)}",
        f"exp_manager.name={EXP_NAME}",
        "exp_manager.resume_if_exists=true",  # like the in-process run: resume the same run's checkpoint
        "exp_manager.resume_ignore_no_checkpoint=true",
    ]
    stop = recipe.early_stopping_config(hp)
    if stop:
        exp.append("+exp_manager.create_early_stopping_callback=true")
        exp += ["+" + o for o in flatten("exp_manager.early_stopping_callback_params", stop)]
    return model + trainer + exp


@dataclass(frozen=True)
class ContainerPlan:
    script: str
    prepare: list[str]
    train: list[str]
    overrides: list[str]
    differences: list[str]

    def to_dict(self) -> dict:
        return {"image": NEMO_IMAGE, "stock_script": STOCK_SCRIPT, "differences": self.differences}


def _docker(root: Path, *, token: bool) -> list[str]:
    cmd = ["docker", "run", "--gpus", "all", "--rm", "--shm-size=16g", "-v", f"{root}:{MOUNT}"]
    if token:
        cmd += ["-e", "HF_TOKEN"]  # passed through by name from the host environment: never the value
    return [*cmd, NEMO_IMAGE]


def _script(prepare: list[str], train: list[str], produced: Path, out_dir: Path) -> str:
    tmp = out_dir / f".{MODEL_FILE}.container.tmp"
    q = shlex.join
    return "\n".join(
        [
            "#!/usr/bin/env bash",
            "# The same SFT inside NVIDIA's NeMo container, with NeMo's stock examples/asr/speech_to_text_finetune.py.",
            "# Every hyperparameter of the in-process run is forwarded; what still differs is listed under",
            "# container.differences in training_run_info.json.",
            "set -euo pipefail",
            "# 1. the base model with the run's SpecAugment (the stock script's own key never reaches the model)",
            q(prepare),
            "# 2. the stock script, seeded like the in-process run",
            q(train),
            "# 3. publish the result where the in-process run writes it (complete or absent, never half-written)",
            q(["cp", str(produced), str(tmp)]),
            q(["mv", "-f", str(tmp), str(out_dir / MODEL_FILE)]),
            "",
        ]
    )


def write_container_run(
    *,
    weights: str,
    base_is_file: bool,
    train_manifest: Path,
    validation_manifest: Path,
    out_dir: Path,
    hp: dict,
    fingerprint: str,
    devices: int | str = 1,
    num_nodes: int = 1,
    strategy: str = "auto",
    sample_rate: int | None = None,
) -> ContainerPlan:
    """Write container copies of the manifests, the entry helper and `container_command.sh` under out_dir."""
    audio = [r["audio_filepath"] for m in (train_manifest, validation_manifest) for r in fio.read_jsonl(m)]
    tok = hp.get("tokenizer_dir")
    anchors = [*audio, str(out_dir)] + ([weights] if base_is_file else []) + ([str(tok)] if tok else [])
    root = common_root(anchors)
    cdir = out_dir / "container"
    cdir.mkdir(parents=True, exist_ok=True)
    train_c = rewrite_manifest(train_manifest, cdir / "train.jsonl", root)
    val_c = rewrite_manifest(validation_manifest, cdir / "validation.jsonl", root)
    entry = Path(shutil.copyfile(ENTRY, cdir / ENTRY.name))
    exp_dir = cdir / "exp" / fingerprint
    prepared = cdir / "base_prepared.nemo"
    at = Placement(
        train=to_container(train_c, root),
        validation=to_container(val_c, root),
        exp_dir=to_container(exp_dir, root),
        tokenizer_dir=to_container(tok, root) if tok else None,
        sample_rate=sample_rate,
    )
    overrides = [f"init_from_nemo_model={hydra_value(to_container(prepared, root))}"]
    overrides += stock_overrides(hp, at, devices=devices, num_nodes=num_nodes, strategy=strategy)
    prepare = [
        *_docker(root, token=not base_is_file),
        "python",
        to_container(entry, root),
        "prepare",
        "--base",
        to_container(weights, root) if base_is_file else weights,
        "--out",
        to_container(prepared, root),
        "--spec-augment",
        json.dumps(recipe.spec_augment_config(hp), sort_keys=True),
    ]
    stock = [f"--config-path={STOCK_CONFIG_PATH}", f"--config-name={STOCK_CONFIG_NAME}", *overrides]
    launch = ["python", to_container(entry, root), "launch", "--seed", str(hp["seed"]), "--script", STOCK_SCRIPT]
    train = [*_docker(root, token=False), *launch, "--", *stock]
    produced = exp_dir / EXP_NAME / "checkpoints" / f"{EXP_NAME}.nemo"
    differences = list(INHERENT_DIFFERENCES)
    if hp["freeze_pre_encode"]:
        differences.append(
            "freeze_pre_encode: the stock script trains every parameter (its freeze_updates reaches only top-level "
            "modules, not encoder.pre_encode), so the container run also updates the subsampling block"
        )
    if sample_rate is None:
        differences.append("sample rate: the base is downloaded in the container, so the stock yaml's 16000 is used")
    script = _script(prepare, train, produced, out_dir)
    fio.write_text(out_dir / "container_command.sh", script)
    return ContainerPlan(script=script, prepare=prepare, train=train, overrides=overrides, differences=differences)
