"""The container command: every hyperparameter of the in-process run reaches the stock script, key by key.

NVIDIA's NeMo container (and Docker) cannot run here. What can is checked for real: the generated Hydra
overrides are composed with Hydra against the stock `speech_to_text_finetune.yaml` (vendored unchanged in
`stock/`), and the generated bash script is executed with a stand-in `docker` that does what the container
would do with the files (write the prepared base, write the stock run's .nemo where exp_manager puts it).
"""

import ast
import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from asr_flywheel.backends.nemo.container import (
    EXP_NAME,
    NEMO_IMAGE,
    STOCK_SCRIPT,
    to_container,
    write_container_run,
)
from asr_flywheel.backends.nemo.recipe import DEFAULTS, spec_augment_config
from asr_flywheel.errors import InputError

STOCK_DIR = Path(__file__).parent / "stock"


def manifests(tmp_path):
    audio = tmp_path / "data" / "audio"
    audio.mkdir(parents=True)
    rows = [{"audio_filepath": str(audio / f"{i}.wav"), "text": "x", "duration": 1.0} for i in range(3)]
    for r in rows:
        open(r["audio_filepath"], "wb").close()
    train = tmp_path / "split" / "train.jsonl"
    val = tmp_path / "split" / "validation.jsonl"
    train.parent.mkdir()
    train.write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    val.write_text(json.dumps(rows[2]) + "\n")
    return train, val


def plan_for(tmp_path, hp=None, *, base="nvidia/parakeet-tdt-0.6b-v2", base_is_file=False, **kw):
    train, val = manifests(tmp_path)
    return write_container_run(
        weights=base,
        base_is_file=base_is_file,
        train_manifest=train,
        validation_manifest=val,
        out_dir=tmp_path / "model",
        hp={**DEFAULTS, **(hp or {})},
        fingerprint="fp0",
        **kw,
    )


def compose(overrides: list[str]):
    """The config the stock script would run with: Hydra composes the overrides onto the stock yaml."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(STOCK_DIR), version_base=None):
        return hydra_compose("speech_to_text_finetune", overrides=overrides)


def arg_after(argv: list[str], flag: str) -> str:
    return argv[argv.index(flag) + 1]


def test_paths_are_rewritten_into_a_copy_under_workspace(tmp_path):
    plan = plan_for(tmp_path)
    train = tmp_path / "split" / "train.jsonl"
    before = train.read_text()
    assert plan.train[:2] == ["docker", "run"] and NEMO_IMAGE in plan.train and STOCK_SCRIPT in plan.train
    assert f"{tmp_path}:/workspace" in plan.train
    assert "model.train_ds.manifest_filepath=/workspace/model/container/train.jsonl" in plan.overrides
    rows = [json.loads(x) for x in (tmp_path / "model" / "container" / "train.jsonl").read_text().splitlines()]
    assert [r["audio_filepath"] for r in rows] == ["/workspace/data/audio/0.wav", "/workspace/data/audio/1.wav"]
    assert train.read_text() == before  # never rewritten in place


def test_hub_base_is_prepared_with_the_token_passed_by_name_only(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", "hf_secretvalue0123456789")
    plan = plan_for(tmp_path)
    assert arg_after(plan.prepare, "--base") == "nvidia/parakeet-tdt-0.6b-v2"
    assert "HF_TOKEN" in plan.prepare and "HF_TOKEN" not in plan.train  # only the download step needs it
    assert "init_from_nemo_model=/workspace/model/container/base_prepared.nemo" in plan.overrides
    assert "hf_secretvalue" not in plan.script


def test_local_base_model_is_mounted_and_referenced(tmp_path):
    base = tmp_path / "models" / "base.nemo"
    base.parent.mkdir()
    base.write_bytes(b"x")
    plan = plan_for(tmp_path, base=str(base), base_is_file=True)
    assert arg_after(plan.prepare, "--base") == "/workspace/models/base.nemo"
    assert "HF_TOKEN" not in plan.script


def test_paths_outside_the_mount_are_rejected(tmp_path):
    with pytest.raises(InputError, match="outside the mounted directory"):
        to_container("/etc/passwd", tmp_path)


def test_every_generated_override_is_accepted_by_the_stock_config(tmp_path):
    hp = {"tokenizer_dir": str(tmp_path / "tok"), "early_stopping_patience": 2}
    (tmp_path / "tok").mkdir()
    cfg = compose(plan_for(tmp_path, hp).overrides)  # Hydra raises on a key the yaml lacks without `+`
    assert cfg.model.spec_augment is None  # the stock script's own (unused) assignment is switched off
    assert cfg.trainer.strategy == "auto" and cfg.trainer.devices == 1 and cfg.trainer.accelerator == "gpu"
    assert cfg.exp_manager.name == EXP_NAME and cfg.exp_manager.resume_if_exists is True


# hyperparameter -> (a non-default value, where the stock run reads it)
HYDRA_KEYS = {
    "lr": (5e-4, ["model.optim.lr"]),
    "min_lr": (5e-6, ["model.optim.sched.min_lr"]),
    "weight_decay": (0.01, ["model.optim.weight_decay"]),
    "warmup_steps": (77, ["model.optim.sched.warmup_steps"]),
    "epochs": (9, ["trainer.max_epochs"]),
    "max_steps": (123, ["trainer.max_steps"]),
    "batch_size": (6, ["model.train_ds.batch_size", "model.validation_ds.batch_size"]),
    "accumulate_grad_batches": (3, ["trainer.accumulate_grad_batches"]),
    "gradient_clip_val": (0.5, ["trainer.gradient_clip_val"]),
    "precision": ("16-mixed", ["trainer.precision"]),
    "max_duration": (15.5, ["model.train_ds.max_duration"]),
    "min_duration": (0.4, ["model.train_ds.min_duration"]),
    "num_workers": (3, ["model.train_ds.num_workers", "model.validation_ds.num_workers"]),
    "early_stopping_patience": (5, ["exp_manager.early_stopping_callback_params.patience"]),
    "tokenizer_type": ("wpe", ["model.tokenizer.type"]),
}
PREPARE_KEYS = ("spec_augment", "freq_masks", "time_masks", "freq_width", "time_width")  # tested below
OTHER_KEYS = ("seed", "tokenizer_dir")
DIFFERENCE_KEYS = ("freeze_pre_encode",)  # no stock key reaches it: recorded as a difference (tested below)


def test_the_key_by_key_tests_cover_every_hyperparameter():
    assert set(HYDRA_KEYS) | set(PREPARE_KEYS) | set(OTHER_KEYS) | set(DIFFERENCE_KEYS) == set(DEFAULTS)


def dig(cfg, dotted: str):
    for part in dotted.split("."):
        cfg = cfg[part]
    return cfg


@pytest.mark.parametrize("key", sorted(HYDRA_KEYS))
def test_hyperparameter_reaches_the_stock_config(key, tmp_path):
    value, paths = HYDRA_KEYS[key]
    assert DEFAULTS[key] != value
    hp = {key: value}
    if key == "tokenizer_type":
        hp["tokenizer_dir"] = str(tmp_path)
    cfg = compose(plan_for(tmp_path, hp).overrides)
    assert [dig(cfg, p) for p in paths] == [value] * len(paths)


def test_min_lr_is_forwarded_not_left_at_the_stock_default(tmp_path):
    cfg = compose(plan_for(tmp_path).overrides)
    assert cfg.model.optim.sched.min_lr == DEFAULTS["min_lr"] != 5e-6  # the stock yaml's 5e-6


def test_early_stopping_matches_the_in_process_callback(tmp_path):
    from asr_flywheel.backends.nemo.recipe import early_stopping_config

    cfg = compose(plan_for(tmp_path).overrides)
    assert cfg.exp_manager.create_early_stopping_callback is True
    assert dict(cfg.exp_manager.early_stopping_callback_params) == early_stopping_config(DEFAULTS)
    off = compose(plan_for(tmp_path / "off", {"early_stopping_patience": 0}).overrides)
    assert not off.exp_manager.get("create_early_stopping_callback", False)


def test_without_early_stopping_validation_runs_once_after_the_last_epoch(tmp_path):
    every = compose(plan_for(tmp_path).overrides)
    assert every.trainer.check_val_every_n_epoch == 1  # early stopping reads val_wer every epoch
    hp = {"early_stopping_patience": 0, "epochs": 7}
    once = compose(plan_for(tmp_path / "once", hp).overrides)
    assert once.trainer.check_val_every_n_epoch == 7 and once.trainer.max_epochs == 7
    steps = compose(plan_for(tmp_path / "steps", {**hp, "max_steps": 50}).overrides)
    assert steps.trainer.check_val_every_n_epoch == 1  # a step-bounded run may stop before the last epoch


def test_tokenizer_dir_turns_on_the_stock_vocabulary_update(tmp_path):
    tok = tmp_path / "tokenizers" / "new"
    tok.mkdir(parents=True)
    cfg = compose(plan_for(tmp_path, {"tokenizer_dir": str(tok)}).overrides)
    assert cfg.model.tokenizer.update_tokenizer is True
    assert cfg.model.tokenizer.dir == "/workspace/tokenizers/new"
    assert compose(plan_for(tmp_path / "none").overrides).model.tokenizer.update_tokenizer is False


def test_seed_is_applied_by_the_launcher(tmp_path):
    plan = plan_for(tmp_path, {"seed": 1234})
    assert arg_after(plan.train, "launch") == "--seed" and arg_after(plan.train, "--seed") == "1234"
    assert arg_after(plan.train, "--script") == STOCK_SCRIPT


SPEC_AUGMENT_CASES = {"freq_masks": 1, "time_masks": 3, "freq_width": 11, "time_width": 0.1}


@pytest.mark.parametrize("key", sorted(SPEC_AUGMENT_CASES))
def test_spec_augment_hyperparameter_is_written_into_the_prepared_base(key, tmp_path):
    """The stock key never reaches the model, so the masks travel in the prepare step's config."""
    plan = plan_for(tmp_path, {key: SPEC_AUGMENT_CASES[key]})
    masks = json.loads(arg_after(plan.prepare, "--spec-augment"))
    assert masks[key] == SPEC_AUGMENT_CASES[key] != DEFAULTS[key]
    assert masks == spec_augment_config({**DEFAULTS, key: SPEC_AUGMENT_CASES[key]})
    assert "model.spec_augment=null" in plan.overrides


def test_spec_augment_off_prepares_a_base_without_masks(tmp_path):
    plan = plan_for(tmp_path, {"spec_augment": False})
    assert json.loads(arg_after(plan.prepare, "--spec-augment")) is None


FAKE_DOCKER = """#!{python}
# Stand-in for `docker run ... nemo image ...`: does to the mounted files what the container run would.
import sys
from pathlib import Path

argv = sys.argv[1:]
open({log!r}, "a").write(repr(argv) + "\\n")
root = Path(argv[argv.index("-v") + 1].split(":")[0])
host = lambda p: root / p.removeprefix("/workspace/")
if "prepare" in argv:
    host(argv[argv.index("--out") + 1]).write_bytes(b"prepared")
else:
    opts = dict(a.split("=", 1) for a in argv if a.startswith("exp_manager."))
    name = opts["exp_manager.name"]
    out = host(opts["exp_manager.exp_dir"]) / name / "checkpoints" / (name + ".nemo")
    out.parent.mkdir(parents=True)
    out.write_bytes(b"trained by the stock script")
"""


def test_the_script_publishes_the_result_as_adapted_model_nemo(tmp_path):
    plan = plan_for(tmp_path)
    bindir = tmp_path / "bin"
    bindir.mkdir()
    docker = bindir / "docker"
    docker.write_text(FAKE_DOCKER.format(python=sys.executable, log=str(tmp_path / "docker.log")))
    docker.chmod(docker.stat().st_mode | stat.S_IEXEC)
    script = tmp_path / "model" / "container_command.sh"
    assert script.read_text() == plan.script
    env = {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}
    subprocess.run(["bash", str(script)], check=True, env=env, timeout=60)
    out = tmp_path / "model"
    assert (out / "adapted_model.nemo").read_bytes() == b"trained by the stock script"
    assert (out / "container" / "base_prepared.nemo").read_bytes() == b"prepared"
    assert not list(out.glob(".*tmp"))
    calls = [ast.literal_eval(x) for x in (tmp_path / "docker.log").read_text().splitlines()]
    assert [("prepare" in c) for c in calls] == [True, False]  # prepared first, then the stock run


def test_the_launcher_seeds_then_runs_the_script_with_the_overrides(tmp_path, monkeypatch):
    from asr_flywheel.backends.nemo import container_entry

    probe = tmp_path / "probe.py"
    probe.write_text(
        "import sys, json, torch\n"
        f"open({str(tmp_path / 'out.json')!r}, 'w').write(json.dumps([sys.argv, torch.rand(2).tolist()]))\n"
    )
    monkeypatch.setattr(sys, "argv", list(sys.argv))  # the launcher hands the stock script its argv
    runs = []
    for _ in range(2):
        container_entry.main(["launch", "--seed", "7", "--script", str(probe), "--", "a.b=1", "+c=x"])
        runs.append(json.loads((tmp_path / "out.json").read_text()))
    assert runs[0] == runs[1] and runs[0][0] == [str(probe), "a.b=1", "+c=x"]


def test_a_frozen_subsampling_block_is_listed_as_what_the_container_run_does_differently(tmp_path):
    assert not any(d.startswith("freeze_pre_encode") for d in plan_for(tmp_path / "a").differences)
    assert any(
        d.startswith("freeze_pre_encode") for d in plan_for(tmp_path / "b", {"freeze_pre_encode": True}).differences
    )
