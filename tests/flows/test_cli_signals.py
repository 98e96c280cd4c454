"""SIGTERM and SIGINT stop a verb with 143 / 130 and one clear line, keep the checkpoint, and leave no output that
looks complete. Real `flywheel` processes, real tiny NeMo models, real signals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from helpers import subprocess_env, write_tiny_cycle_config

FLYWHEEL = str(Path(sys.executable).with_name("flywheel"))


def start(argv: list[str], log: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("FLYWHEEL_DEBUG", None)
    return subprocess.Popen([FLYWHEEL, *argv], stdout=subprocess.DEVNULL, stderr=log.open("wb"), env=env)


def wait_until(predicate, proc: subprocess.Popen, log: Path, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        assert proc.poll() is None, f"exited early ({proc.returncode}):\n{log.read_text()[-3000:]}"
        time.sleep(0.1)
    proc.kill()
    raise AssertionError(f"timed out:\n{log.read_text()[-3000:]}")


def stop_with(proc: subprocess.Popen, signum: int, log: Path) -> tuple[int, str]:
    proc.send_signal(signum)
    try:
        rc = proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise
    return rc, log.read_text(errors="replace")


def test_sigterm_during_train_exits_143_keeps_the_checkpoint_and_writes_no_model(
    nemo_tiny_models, tiny_split, tmp_path
):
    out, log = tmp_path / "model", tmp_path / "train.log"
    argv = ["train", str(tiny_split), "--base", str(nemo_tiny_models["ctc"]), "--out", str(out)]
    argv += ["--epochs", "200", "--batch-size", "8", "--warmup-steps", "1", "--set", "early_stopping_patience=0"]
    proc = start(argv, log)
    wait_until(lambda: list(out.glob(".checkpoints/*/last.ckpt")), proc, log)  # an epoch is done; training goes on
    rc, err = stop_with(proc, signal.SIGTERM, log)
    assert rc == 143, err[-3000:]
    message = [line for line in err.splitlines() if "interrupted by" in line]
    assert message == [
        "flywheel train: interrupted by SIGTERM; stopped without writing complete outputs; "
        "rerun the same command to resume from the last epoch checkpoint"
    ]
    assert "Traceback" not in err
    assert not (out / "adapted_model.nemo").exists() and not (out / "training_run_info.json").exists()
    assert list(out.glob(".checkpoints/*/last.ckpt"))  # kept for the resume


def test_sigint_during_eval_exits_130_and_writes_no_metrics(nemo_tiny_models, tiny_dataset, tmp_path):
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()]
    many = []
    for i, r in enumerate(rows * 16):  # 512 rows, each its own file (hard links), so transcription takes a while
        audio = tmp_path / "audio" / f"{i:03d}.wav"
        audio.parent.mkdir(exist_ok=True)
        os.link(tiny_dataset.parent / r["audio_filepath"], audio)
        many.append({**r, "audio_filepath": str(audio)})
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in many))
    out, log = tmp_path / "eval", tmp_path / "eval.log"
    argv = ["eval", str(manifest), "--model", str(nemo_tiny_models["ctc"]), "--out", str(out), "--batch-size", "1"]
    proc = start(argv, log)
    wait_until(lambda: "transcribing [" in log.read_text(errors="replace"), proc, log)
    rc, err = stop_with(proc, signal.SIGINT, log)
    assert rc == 130, err[-3000:]
    assert "flywheel eval: interrupted by SIGINT; stopped without writing complete outputs" in err
    assert "Traceback" not in err
    assert not (out / "metrics.json").exists() and not (out / "offline_hyps.jsonl").exists()


def test_sigint_during_a_cycle_exits_130_and_keeps_the_checkpoint(
    prefect_server, nemo_tiny_models, tiny_dataset, tmp_path
):
    ws, log = tmp_path / "ws", tmp_path / "cycle.log"
    config = write_tiny_cycle_config(
        tmp_path / "fw.toml", ws, nemo_tiny_models["ctc"], epochs=200, hyperparameters={"early_stopping_patience": 0}
    )
    proc = subprocess.Popen(
        [FLYWHEEL, "cycle", str(tiny_dataset), "--config", str(config)],
        env=subprocess_env(prefect_server, config),
        stdout=subprocess.DEVNULL,
        stderr=log.open("wb"),
    )
    model_dir = ws / "cycles" / "cycle-0001" / "model"
    wait_until(lambda: list(model_dir.glob(".checkpoints/*/last.ckpt")), proc, log)
    rc, err = stop_with(proc, signal.SIGINT, log)
    assert rc == 130, err[-3000:]
    assert (
        "flywheel cycle: interrupted by SIGINT; stopped without writing complete outputs; "
        "rerun the same command to resume the cycle"
    ) in err
    assert not (model_dir / "adapted_model.nemo").exists() and list(model_dir.glob(".checkpoints/*/last.ckpt"))


def test_a_signal_sets_the_exit_code_even_when_a_library_replaces_or_swallows_the_interruption(monkeypatch, capsys):
    """NeMo's transcribe raises ValueError from a `finally` while unwinding; Lightning may swallow and return."""
    from asr_flywheel.flows.cli import main
    from asr_flywheel.plugins.manager import Plugins

    def replaced(self):
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(5)
        finally:
            raise ValueError("Cannot unfreeze partially without first freezing the module")

    def swallowed(self):
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(5)
        except BaseException:
            return {}

    monkeypatch.setattr(Plugins, "base_models", replaced)
    assert main(["models"]) == 143
    assert capsys.readouterr().err.splitlines() == [
        "flywheel models: interrupted by SIGTERM; stopped without writing complete outputs"
    ]
    monkeypatch.setattr(Plugins, "base_models", swallowed)
    assert main(["models"]) == 130
    assert "flywheel models: interrupted by SIGINT" in capsys.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the CLI's handlers are gone after the call
