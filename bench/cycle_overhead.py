"""Prefect's orchestration overhead on one tiny cycle.

    python bench/cycle_overhead.py [--repeats 3]

The same cycle (32 espeak-ng clips, a tiny NeMo CTC model built from config, 1 training epoch) runs three ways,
each in a fresh process with a fresh workspace:
  plain     the step functions of flows.steps called in flow order (no Prefect at all);
  ephemeral flywheel_cycle as a Prefect flow with no PREFECT_API_URL (Prefect starts a throwaway server);
  server    flywheel_cycle against a local Prefect server started beforehand (what deployments use).
Every mode runs with a cold PREFECT_HOME (new, empty: first-run database migrations are paid) and a warm one
(used once before measuring). Each repeat runs all six (mode, home) pairs, in an order rotated between repeats,
so drift on a shared machine affects every mode alike. Reported: the median wall time of the cycle call (imports
excluded), the overhead vs plain as a ratio and per task run, and the spread.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
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
    """The cycle's steps as plain calls, in the order flows.cycle runs them (the same step functions)."""
    from asr_flywheel.config import load_config
    from asr_flywheel.cycle import StartingPoint, Workspace, version_to_cycle
    from asr_flywheel.flows import steps

    cfg = load_config(config)
    ws = Workspace(cfg.workspace)
    t = time.perf_counter()
    ref, _ = version_to_cycle(manifest, cfg)
    cycle = ws.claim_version(ref.version, ref.path).cycle
    start = StartingPoint(cfg.cycle.base_model, None, None)
    m = ref.load(cfg)
    hyps = steps.transcribe_rows(m, start.model, batch_size=cfg.cycle.batch_size)
    base = steps.score(
        out=cycle.baseline_dir, manifest=m, hyps=hyps, model_ref=start.model, cfg=cfg, cycle=1, family=ref.path
    ).record
    steps.gate(
        metrics_path=base.metrics,
        out_dir=cycle.path,
        cfg=cfg,
        history=ws.history("gate.json", exclude=cycle),
        force_reason="benchmark",
    )
    split = steps.split(report=ref.report(cfg), out_dir=cycle.split_dir, cfg=cfg)
    result = steps.train(
        cycle.split_dir, start.model, cycle.model_dir, hyperparameters=dict(cfg.hyperparameters), config=cfg
    )
    trained = steps.train_record(result, None)
    val = split.held_out.load(cfg)
    seen, train_audio = steps.trained_on(split)
    after = steps.score(
        out=cycle.after_dir,
        manifest=val,
        hyps=steps.transcribe_rows(val, trained.model, batch_size=cfg.cycle.batch_size),
        model_ref=trained.model,
        cfg=cfg,
        cycle=2,
        scope="held-out (validation) rows",
        family=ref.path,
        before_metrics=base.metrics,
        seen_terms=seen,
        train_audio=train_audio,
    ).record
    decision = steps.decide(
        before_metrics=base.metrics,
        after_metrics=after.metrics,
        out_dir=cycle.path,
        cfg=cfg,
        history=ws.history("decision.json", exclude=cycle),
    )
    steps.update_chart(ws, cycle.number)
    steps.register(registry_dir=ws.registry_dir, cycle=1, trained=trained, start=start, manifest=ref, decision=decision)
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


MODES = ("plain", "ephemeral", "server")
HOMES = ("cold", "warm")


def mode_env(mode: str, home: Path, base_env: dict, api_url: str) -> dict:
    env = {**base_env, "PREFECT_HOME": str(home)}
    if mode == "server":
        env["PREFECT_API_URL"] = api_url
    return env


def schedule(repeats: int) -> list[list[tuple[str, str]]]:
    """Per repeat, every (mode, home) once; the order rotates between repeats so no mode always runs first
    (page cache, CPU frequency and the server's own warm-up then affect every mode alike)."""
    runs = [(m, h) for m in MODES for h in HOMES]
    return [runs[r % len(runs) :] + runs[: r % len(runs)] for r in range(repeats)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3, metavar=("MODE", "MANIFEST", "CONFIG"), help=argparse.SUPPRESS)
    ap.add_argument("--repeats", type=int, default=3, help="rounds; each runs every mode with a cold and a warm home")
    args = ap.parse_args()
    if args.child:
        child(*args.child)
        return
    if args.repeats < 1:
        raise SystemExit("--repeats must be at least 1")
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
        results: dict[tuple[str, str], list[dict]] = {(m, h): [] for m in MODES for h in HOMES}
        n = 0

        def once(mode: str, home: Path) -> dict:
            nonlocal n
            n += 1
            config = write_tiny_cycle_config(root / f"run{n}.toml", root / f"ws{n}", model, epochs=1)
            return spawn(mode, manifest, config, mode_env(mode, home, base_env, srv.api_url))

        try:
            for mode in MODES:  # warm homes: one unmeasured run each, so the measured runs find them used
                once(mode, root / f"{mode}-warm-home")
            for rep, order in enumerate(schedule(args.repeats)):
                for mode, kind in order:
                    home = root / (f"{mode}-cold-home-{rep}" if kind == "cold" else f"{mode}-warm-home")
                    results[(mode, kind)].append(once(mode, home))
        finally:
            server.stop_process_group(srv.pid)
    report(results, args.repeats)


def report(results: dict[tuple[str, str], list[dict]], repeats: int) -> None:
    med = {k: statistics.median(r["seconds"] for r in v) for k, v in results.items()}
    tasks = {k: max(r["tasks"] for r in v) for k, v in results.items()}
    print(f"tiny cycle, median of {repeats} interleaved repeats (imports excluded), cold and warm PREFECT_HOME:")
    for kind in HOMES:
        plain = med[("plain", kind)]
        print(f"  [{kind} home] plain function calls:   {plain:7.2f} s")
        for mode in ("ephemeral", "server"):
            s = med[(mode, kind)]
            per_task = (s - plain) / max(tasks[(mode, kind)], 1)
            print(
                f"  [{kind} home] Prefect flow, {mode:9s}: {s:7.2f} s = {s / plain:.2f}x plain; "
                f"+{s - plain:.2f} s over {tasks[(mode, kind)]} task runs = {per_task:.3f} s per task"
            )
    for kind in HOMES:
        gap = med[("ephemeral", kind)] - med[("server", kind)]
        what = "the throwaway server's start" + (" and migrations" if kind == "cold" else "")
        print(f"  [{kind} home] ephemeral minus server ({what}): {gap:.2f} s")
    spread = {k: (min(r["seconds"] for r in v), max(r["seconds"] for r in v)) for k, v in results.items()}
    print("  spread (min–max): " + "; ".join(f"{m}/{h} {lo:.1f}–{hi:.1f}" for (m, h), (lo, hi) in spread.items()))


if __name__ == "__main__":
    main()
