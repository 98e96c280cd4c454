"""The offline demo: the bundled clinical example through validate → score → gate.

Audio is synthesised on first run with the espeak-ng synthesizer plugin (16 kHz mono), so nothing but the
text manifest is committed. Re-running reuses the audio and writes a new cycle directory.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.cycle import Workspace
from asr_flywheel.gate import evaluate_gate, history_records, is_first_eval, render_gate
from asr_flywheel.hyps import align_hyps, read_hyps
from asr_flywheel.scoring import score_manifest, write_score_outputs
from asr_flywheel.validation import load_manifest
from plugins.manager import Plugins

EXAMPLE_DIR = Path(__file__).resolve().parents[1] / "examples" / "clinical"


def prepare_example(dest: Path, synthesizer: str = "espeak-ng") -> Path:
    """Copy the example manifest into `dest` and synthesise any missing audio. Returns the manifest path."""
    dest.mkdir(parents=True, exist_ok=True)
    manifest = dest / "manifest.jsonl"
    shutil.copyfile(EXAMPLE_DIR / "manifest.jsonl", manifest)
    tts = Plugins().synthesizer(synthesizer)
    rows = fio.read_jsonl(manifest)
    missing = [r for r in rows if not (dest / r["audio_filepath"]).exists()]
    for i, r in enumerate(missing, 1):
        tts.synthesize(r["text"], dest / r["audio_filepath"])
        if i % 20 == 0 or i == len(missing):
            print(f"  synthesised {i}/{len(missing)} clips")
    return manifest


def run_demo(workspace: str | Path, config: FlywheelConfig | None = None) -> dict:
    cfg = config or FlywheelConfig()
    ws = Workspace(workspace)
    print(f"workspace: {ws.root}")
    manifest_path = prepare_example(ws.root / "data" / "clinical")
    manifest = load_manifest(manifest_path, cfg)
    print(f"validated {len(manifest)} rows (audio checked), manifest version {manifest.version[:12]}")
    cycle = ws.new_cycle()
    with cycle.lock():
        hyps = align_hyps(manifest, read_hyps(_hyps_for(manifest_path)))
        report = score_manifest(
            manifest, hyps, config=cfg, model_name="bundled baseline hypotheses", cycle=cycle.number
        )
        paths = write_score_outputs(report, cycle.baseline_dir)
        history = history_records(ws.cycles_dir, "gate.json")
        gate = evaluate_gate(report.metrics, cfg.gate, first_eval=is_first_eval(history, report.metrics))
        fio.write_json(cycle.path / "gate.json", gate.to_dict())
        fio.write_text(cycle.path / "gate.md", render_gate(gate))
        cycle.update_record(manifest=str(manifest_path), manifest_version=manifest.version, gate=str(gate.outcome))
    print(paths["leaderboard"].read_text())
    print(render_gate(gate))
    print(f"cycle directory: {cycle.path}")
    return {"cycle": cycle.number, "gate": str(gate.outcome), "leaderboard": str(paths["leaderboard"])}


def _hyps_for(manifest_path: Path) -> Path:
    """Bundled baseline hypotheses, with audio paths rewritten next to the copied manifest."""
    rows = fio.read_jsonl(EXAMPLE_DIR / "baseline_hyps.jsonl")
    out = manifest_path.parent / "baseline_hyps.jsonl"
    fio.write_jsonl(out, rows)
    return out
