"""`cmu/pocketsphinx-en-us`, the first-party eval-only model, through the CLI as a user meets it: listed in the
catalogue, scored by `flywheel eval` on real clips (a baseline no one here trained), refused by `train` and
`cycle` before any compute with the catalogue's reason, and a clip it cannot decode is named."""

from __future__ import annotations

import json

import numpy as np
import soundfile as sf

from asr_flywheel.flows.cli import main

MODEL = "cmu/pocketsphinx-en-us"


def test_it_is_listed_as_evaluate_only(capsys):
    assert main(["models", "--json"]) == 0
    entry = next(m for m in json.loads(capsys.readouterr().out) if m["name"] == MODEL)
    assert entry["sft"] == "refused" and entry["decoder"] == "other" and entry["backend"] == "pocketsphinx"


def test_eval_gives_a_reference_baseline_on_real_clips(tiny_dataset, tmp_path, capsys):
    # 8 of the 32 clips: PocketSphinx takes about 1.5 s a clip on espeak-ng speech here
    rows = [json.loads(x) for x in tiny_dataset.read_text().splitlines()[:8]]
    some = tmp_path / "some.jsonl"
    some.write_text("".join(json.dumps({**r, "audio_filepath": str(tiny_dataset.parent / r["audio_filepath"])}) + "\n"
                            for r in rows))  # fmt: skip
    assert main(["eval", str(some), "--model", MODEL, "--out", str(tmp_path / "eval")]) == 0
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    hyps = [json.loads(x)["hyp"] for x in (tmp_path / "eval" / "offline_hyps.jsonl").read_text().splitlines()]
    assert metrics["model"] == MODEL and metrics["n"] == len(hyps) == 8
    assert any(h.strip() for h in hyps) and 0 < metrics["wer"] <= 2.0


def test_train_and_cycle_refuse_it_before_any_compute(tiny_dataset, tiny_split, tmp_path, capsys):
    assert main(["train", str(tiny_split), "--base", MODEL, "--out", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert f"refusing to fine-tune {MODEL}: it is evaluate-only" in err and "HMM recogniser" in err
    assert not (tmp_path / "model").exists()
    ws = tmp_path / "ws"
    assert main(["cycle", str(tiny_dataset), "--base", MODEL, "--workspace", str(ws)]) == 2
    assert "it is evaluate-only" in capsys.readouterr().err
    assert not (ws / "cycles").exists()


def test_a_clip_at_another_rate_is_named_not_decoded(tmp_path, capsys):
    clip = tmp_path / "audio" / "a.wav"
    clip.parent.mkdir()
    sf.write(clip, np.zeros(8000, dtype=np.int16), 8000)
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(json.dumps({"audio_filepath": "audio/a.wav", "text": "hello there", "duration": 1.0}) + "\n")
    cfg = tmp_path / "f.toml"
    cfg.write_text("[manifest]\nsample_rate = 8000\n")
    assert main(["--config", str(cfg), "eval", str(manifest), "--model", MODEL, "--out", str(tmp_path / "e")]) == 2
    err = capsys.readouterr().err
    assert "a.wav: 8000 Hz" in err and "16 kHz mono" in err


KILLED_PARENT = """
import os, signal, sys
from asr_flywheel.backends.pocketsphinx.transcriber import PocketSphinxModel
if __name__ == "__main__":
    model = PocketSphinxModel(workers=2)
    model.transcribe([sys.argv[1]])  # the decoder processes now exist
    print(" ".join(str(p) for p in model._executor()._processes), flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # no shutdown, no atexit
"""


def test_decoder_processes_exit_when_their_parent_is_killed(tiny_dataset, tmp_path):
    import os
    import subprocess
    import sys
    import time

    clip = json.loads(tiny_dataset.read_text().splitlines()[0])["audio_filepath"]
    clip = clip if os.path.isabs(clip) else str(tiny_dataset.parent / clip)
    script = tmp_path / "parent.py"
    script.write_text(KILLED_PARENT)
    pids = tmp_path / "workers.txt"
    with pids.open("w") as out:  # a file, not a pipe: orphaned workers would hold a pipe open
        proc = subprocess.Popen([sys.executable, str(script), clip], stdout=out, stderr=subprocess.DEVNULL)
        assert proc.wait(timeout=120) == -9
    workers = [int(p) for p in pids.read_text().split()]
    assert workers  # started on demand: one or two

    def alive(pid: int) -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return not open(f"/proc/{pid}/stat").read().split(") ")[1].startswith("Z")

    deadline = time.monotonic() + 15
    while any(alive(p) for p in workers) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in workers if alive(p)]
    for pid in left:  # never leave them behind, even when the test fails
        os.kill(pid, 9)
    assert not left
