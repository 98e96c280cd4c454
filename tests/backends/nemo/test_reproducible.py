"""Two runs on one host give identical files: the same seeded fine-tune twice gives byte-identical weights and the
same transcripts, scores and run record. (Across hosts the CPU kernels and the thread count change the numbers;
`flywheel demo` pins them: README, "Reproducible numbers".)"""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path

from asr_flywheel.flows.cli import main


def weights_digest(nemo: Path) -> str:
    with tarfile.open(nemo) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_weights.ckpt"))
        return hashlib.sha256(tar.extractfile(member).read()).hexdigest()


def run_once(out: Path, split: Path, base: Path, manifest: Path) -> dict:
    argv = ["train", str(split), "--base", str(base), "--out", str(out / "model"), "--epochs", "2"]
    assert main([*argv, "--batch-size", "8", "--warmup-steps", "1", "--set", "early_stopping_patience=0"]) == 0
    model = out / "model" / "adapted_model.nemo"
    assert main(["eval", str(manifest), "--model", str(model), "--out", str(out / "eval")]) == 0
    info = json.loads((out / "model" / "training_run_info.json").read_text())
    return {
        "weights": weights_digest(model),
        "metrics": info.get("metrics"),
        "hyps": (out / "eval" / "offline_hyps.jsonl").read_bytes(),
        "per_sample": (out / "eval" / "per_sample.jsonl").read_bytes(),
        "scores": {k: v for k, v in json.loads((out / "eval" / "metrics.json").read_text()).items() if k != "model"},
    }


def test_the_same_seeded_fine_tune_twice_gives_identical_weights_transcripts_and_scores(
    nemo_tiny_models, tiny_split, tiny_dataset, tmp_path
):
    first = run_once(tmp_path / "a", tiny_split, nemo_tiny_models["ctc"], tiny_dataset)
    second = run_once(tmp_path / "b", tiny_split, nemo_tiny_models["ctc"], tiny_dataset)
    assert first["weights"] == second["weights"]
    assert first["metrics"] == second["metrics"] and first["metrics"]
    assert first["hyps"] == second["hyps"] and first["per_sample"].replace(b"/a/", b"/b/") == second[
        "per_sample"
    ].replace(b"/a/", b"/b/")
    assert first["scores"] == second["scores"]
