"""The offline demo: one real flywheel cycle on the bundled clinical example, as a Prefect flow.

No model hub is reachable here, so the base model is a tiny NeMo FastConformer-CTC built from config with random
weights (a stand-in for nvidia/parakeet-tdt-0.6b-v2, same code paths). Audio for the 120-row example
(examples/clinical, 24 terms x 5 contexts) is synthesised with the espeak-ng synthesizer plugin on first run.
The cycle then does everything a production cycle does: validate, score the base, gate, split, fine-tune, re-score
held-out rows, decide, register. Re-running is idempotent: the same manifest version is never cycled twice.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import Workspace
from asr_flywheel.plugins.manager import Plugins

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "clinical"
#: Enough epochs for the tiny model to learn the sentence templates in about a minute on 2 CPU cores.
DEMO_HYPERPARAMETERS = {"epochs": 15, "batch_size": 8, "lr": 2e-3, "warmup_steps": 20}


def prepare_example(dest: Path, synthesizer: str = "espeak-ng") -> Path:
    """Copy the example manifest into `dest` and synthesise any missing audio. Returns the manifest path."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = dest / "manifest.jsonl"
    if not manifest.exists():
        shutil.copyfile(EXAMPLE_DIR / "manifest.jsonl", manifest)
    tts = Plugins().synthesizer(synthesizer)
    rows = fio.read_jsonl(manifest)
    missing = [r for r in rows if not (dest / r["audio_filepath"]).exists()]
    for i, r in enumerate(missing, 1):
        tts.synthesize(r["text"], dest / r["audio_filepath"])
        if i % 40 == 0 or i == len(missing):
            print(f"  synthesised {i}/{len(missing)} clips with {synthesizer}")
    return manifest


def prepare_base_model(ws: Workspace, manifest: Path) -> Path:
    path = ws.root / "models" / "tiny-ctc-base.nemo"
    if not path.exists():
        from asr_flywheel.backends.nemo.tiny import build_tiny_model

        print("  building a tiny FastConformer-CTC base model from config (random weights; no hub access here)")
        build_tiny_model("ctc", [r["text"] for r in fio.read_jsonl(manifest)], path)
    return path


def write_demo_config(ws: Workspace, base_model: Path) -> Path:
    lines = [
        f"workspace = {json.dumps(str(ws.root))}",
        "[cycle]",
        f"base_model = {json.dumps(str(base_model))}",
        "shard_size = 64",
        "[hyperparameters]",
    ]
    lines += [f"{k} = {json.dumps(v)}" for k, v in DEMO_HYPERPARAMETERS.items()]
    return fio.write_text(ws.root / "demo.toml", "\n".join(lines) + "\n")


def run_demo(workspace: str | Path, config: FlywheelConfig | None = None) -> dict:
    from asr_flywheel.flows.cycle import flywheel_cycle

    ws = Workspace(workspace)
    print(f"workspace: {ws.root}")
    manifest = prepare_example(ws.root / "data" / "clinical")
    base = prepare_base_model(ws, manifest)
    demo_config = write_demo_config(ws, base)
    print("running one flywheel cycle as a Prefect flow (ephemeral API; set PREFECT_API_URL to use a server) ...")
    result = flywheel_cycle(manifest=str(manifest), config_path=str(demo_config))
    cycle = ws.cycle(result["cycle"])
    report(cycle.path, result)
    return result


def report(cycle_dir: Path, result: dict) -> None:
    print("\n" + "=" * 100)
    if result["status"] == "duplicate":
        print(f"This manifest version was already cycled in {cycle_dir} (the flywheel never cycles a version twice).")
    for name in ("baseline/leaderboard_cycle*.md", "gate.md", "after/leaderboard_cycle*.md", "decision.md"):
        for p in sorted(cycle_dir.glob(name)):
            text = p.read_text()
            if "leaderboard" in p.name:  # headline and categories; the full board is in the file
                text = text.split("## 3.")[0]
            print(f"\n--- {p.relative_to(cycle_dir)} ---\n{text.rstrip()}")
    print("\n" + "=" * 100)
    print(f"outcome: {result.get('outcome')}   cycle directory: {cycle_dir}")
    print("The base is a randomly initialised tiny model, so expect it to learn the sentence templates but not yet the")
    print("drug names: the decision table then says what to do next (grow the manifest, or keep tuning).")
    print("Next: `flywheel server up` for the Prefect UI, `flywheel server deployments`,")
    print("then `flywheel publish <manifest>`.")
