"""Prefect's orchestration overhead on one tiny cycle, measured in one run.

    python bench/cycle_overhead.py [--repeats 1]

The same cycle (32 espeak-ng clips, a tiny NeMo CTC model built from config, 1 training epoch) runs three ways,
each in a fresh process with a fresh workspace:
  plain     the steps of flows.steps called as plain functions, in flow order (no Prefect at all);
  ephemeral flywheel_cycle as a Prefect flow with no PREFECT_API_URL (Prefect starts a throwaway server);
  server    flywheel_cycle against a local Prefect server started beforehand (what deployments use).
Reported: wall time of the cycle call (imports excluded), the overhead vs plain as a ratio and in seconds per
task run, and for ephemeral mode how much of it is the throwaway server's start.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "support"))


def prepare(root: Path) -> tuple[Path, Path]:
    from asr_flywheel.backends.nemo.tiny import build_tiny_model
    from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
    from helpers import dataset_rows, write_manifest

    tts = EspeakSynthesizer()
    rows = []
    for i, (text, term, cat, voice) in enumerate(dataset_rows(2)):
        tts.synthesize(text, root / "audio" / f"r{i:02d}.wav", voice=voice)
        rows.append({"audio_filepath": f"audio/r{i:02d}.wav", "text": text, "term": term, "entity_category": cat})
    manifest = write_manifest(root / "manifest.jsonl", rows)
    model = build_tiny_model("ctc", [r["text"] for r in rows], root / "tiny_ctc.nemo")
    return manifest, model


def run_plain(manifest: str, config: str) -> dict:
    """The cycle's steps as plain calls, in the order flows.cycle runs them."""
    from asr_flywheel.config import load_config
    from asr_flywheel.cycle import Workspace
    from asr_flywheel.flows import steps

    cfg = load_config(config)
    ws = Workspace(cfg.workspace)
    t = time.perf_counter()
    ref = steps.ManifestRef(manifest, *(lambda m: (m.version, len(m)))(steps.load_manifest(manifest, cfg)))
    cycle = ws.claim_version(ref.version, ref.path).cycle
    model = steps.load_model(cfg.cycle.base_model)
    m = ref.load(cfg)
    base = steps.score_rows_to_dir(
        cycle.baseline_dir,
        m,
        model.transcribe(m.audio_paths, batch_size=8),
        cfg.cycle.base_model,
        cfg,
        1,
        "all rows",
        ref.path,
    )
    steps.gate_cycle(cycle.path, ws.cycles_dir, base["metrics"], cfg, "benchmark")
    split = steps.split_cycle(cycle.split_dir, ref, cfg)
    trained = steps.train(
        cycle.split_dir, cfg.cycle.base_model, cycle.model_dir, hyperparameters=dict(cfg.hyperparameters), config=cfg
    )
    val = steps.ManifestRef(**split["ref"]).load(cfg)
    after = steps.score_rows_to_dir(
        cycle.after_dir,
        val,
        steps.load_model(str(trained.model_path)).transcribe(val.audio_paths, batch_size=8),
        str(trained.model_path),
        cfg,
        2,
        "held-out rows",
        ref.path,
        base["metrics"],
    )
    decision = steps.decide_cycle(cycle.path, ws.cycles_dir, 2, base["metrics"], after["metrics"], cfg, ref.path)
    steps.register_cycle(
        ws.registry_dir,
        1,
        {"model": str(trained.model_path), "run_info": str(trained.run_info_path)},
        cfg.cycle.base_model,
        None,
        ref.version,
        ref.path,
        decision,
        None,
    )
    return {"seconds": time.perf_counter() - t, "tasks": 0}


def run_flow(manifest: str, config: str) -> dict:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    from asr_flywheel.flows.cycle import flywheel_cycle

    t = time.perf_counter()
    state = flywheel_cycle(manifest=manifest, config_path=config, force_finetune_reason="benchmark", return_state=True)
    seconds = time.perf_counter() - t
    assert state.is_completed(), state
    with get_client(sync_client=True) as client:
        tasks = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
        )
    return {"seconds": seconds, "tasks": len(tasks)}


def child(mode: str, manifest: str, config: str) -> None:
    import nemo.collections.asr  # noqa: F401  - imports are paid before timing, in every mode

    if mode != "plain":
        import prefect  # noqa: F401
    result = run_plain(manifest, config) if mode == "plain" else run_flow(manifest, config)
    print("RESULT " + json.dumps(result), flush=True)


def spawn(mode: str, manifest: Path, config: Path, env: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(manifest), str(config)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise SystemExit(f"{mode} failed:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return json.loads(line[7:])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3, metavar=("MODE", "MANIFEST", "CONFIG"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    from asr_flywheel.flows import server
    from helpers import write_tiny_cycle_config

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        manifest, model = prepare(root)
        srv = server.start(root / "prefect-home")
        server.prepare(srv.api_url)
        base_env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        base_env.update(
            PREFECT_SERVER_ANALYTICS_ENABLED="false", PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="120"
        )
        envs = {
            "plain": base_env,
            "ephemeral": {**base_env, "PREFECT_HOME": str(root / "ephemeral-home")},
            "server": {**base_env, "PREFECT_HOME": str(root / "client-home"), "PREFECT_API_URL": srv.api_url},
        }
        results: dict[str, list[dict]] = {m: [] for m in envs}
        try:
            for rep in range(args.repeats):
                for mode, env in envs.items():
                    config = write_tiny_cycle_config(
                        root / f"{mode}{rep}.toml", root / f"ws-{mode}{rep}", model, epochs=1
                    )
                    results[mode].append(spawn(mode, manifest, config, env))
        finally:
            server.stop_process_group(srv.pid)
    best = {m: min(r, key=lambda x: x["seconds"]) for m, r in results.items()}
    plain = best["plain"]["seconds"]
    print(f"tiny cycle, {len(best)} ways, best of {args.repeats} (imports excluded):")
    print(f"  plain function calls:           {plain:7.2f} s")
    for mode in ("ephemeral", "server"):
        b = best[mode]
        per_task = (b["seconds"] - plain) / max(b["tasks"], 1)
        print(
            f"  Prefect flow, {mode:9s} API:   {b['seconds']:7.2f} s  = {b['seconds'] / plain:.2f}x plain; "
            f"+{b['seconds'] - plain:.2f} s over {b['tasks']} task runs = {per_task:.3f} s per task"
        )
    print(
        f"  ephemeral minus server (the throwaway server's start and first-run migrations): "
        f"{best['ephemeral']['seconds'] - best['server']['seconds']:.2f} s"
    )


if __name__ == "__main__":
    main()
