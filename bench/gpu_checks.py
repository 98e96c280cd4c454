#!/usr/bin/env python
"""GPU checks for the NeMo backend (nemo_toolkit 3.0.0): TDT training on CUDA, and Parakeet-size throughput.

    python bench/gpu_checks.py              # on a CUDA machine (about 2-5 min on an H200)
    python bench/gpu_checks.py --dry-run    # on CPU: everything that can run without CUDA

  (0) preflight: torch / CUDA / bf16, numba and numba.cuda (NeMo's TDT loss is a numba CUDA kernel: a trivial
      kernel is compiled and run), versions and origins of nemo, lightning, transformers, huggingface_hub.
  (a) tiny TDT: the repo's `backends.nemo.tiny.tiny_config("tdt", ...)` model, a SentencePiece tokenizer
      trained on synthetic text, synthetic 16 kHz WAVs + JSONL manifests, then Lightning
      `Trainer(accelerator="gpu", precision="bf16-mixed", max_steps=N)` after setup_training_data /
      setup_multiple_validation_data / setup_optimization, with the real `tdt` loss; then a few fp32 steps.
      Per-step losses are printed and must be finite.
  (b) full size: the parakeet-tdt-0.6b-v2 architecture with random weights (FastConformer 24 x 1024, 8 heads,
      dw_striding 8x / 256 channels, kernel 9, rel_pos, xscaling; 128 mels; 2-layer LSTM prednet 640; joint 640
      + 5 durations; 1024-piece tokenizer; tdt loss). Prints the parameter count and measures bf16-mixed training
      throughput on synthetic 10 s clips. Batches go straight to the model (forward + tdt loss + backward +
      clip + AdamW step, the same calls as EncDecRNNTModel.training_step): this path has no dataloader, logging
      or Lightning-version dependence, so it is the robust number. A secondary Lightning measurement (bs 16,
      same model, in-memory dataloader) shows the trainer overhead; it is skipped when time is short.
  --dry-run (CPU): builds the tiny TDT model, runs a CPU forward, TDT greedy decoding and trainer.validate();
      trains the tiny model with the RNNT loss instead (the TDT loss is CUDA-only) through the same Lightning
      path, bf16-mixed and 32; runs the direct loop and the Lightning-throughput code on the tiny RNNT model;
      builds the full-size model, counts parameters, runs a CPU forward and one direct training step (proxy
      loss, the TDT loss being CUDA-only).

Outputs: log + summary JSON under $OUT (or a temp dir); WAVs/tokenizers in a temp dir. The last stdout line is
`GPU_SUMMARY {json}` (`DRY_RUN_SUMMARY {json}` with --dry-run). Exit status 0 only if every check passed.
If numba CUDA cannot compile a kernel, (a) fails and (b) measures throughput with a labelled proxy loss.

Offline GPU box: the NeMo dependencies missing from the image are wheels in the git-ignored `.whl/` (carried
with the working tree), installed with `--no-deps --target /tmp/site` so the image's torch/numpy/lightning
stay in charge (bench/gpu_wheels.txt lists the set and how to rebuild `.whl/`):
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
        .whl/*.whl && PYTHONPATH=.:/tmp/site python3 -u bench/gpu_checks.py
NeMo 3.0.0 declares lightning<=2.4.0; with lightning >= 2.6 two import-time incompatibilities are patched
before NeMo is imported (see `gpucheck/compat.py`) and reported in the preflight and summary.

The checks live in `bench/gpucheck/` (preflight, tiny_tdt, full_size, training, data, report); model configs,
tokenizers and NeMo logging come from the backend itself (`asr_flywheel.backends.nemo.tiny` / `._runtime`),
so the GPU checks measure the code the flywheel runs. Without an installed checkout (the offline GPU box),
`asr_flywheel.backends` is found through the repository root (see `importable_checkout`).
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import sys
import tempfile
import time
import traceback
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def importable_checkout() -> None:
    """`asr_flywheel.backends` is installed from the top-level `backends/` (setuptools package-dir); on a box
    where the checkout is only on PYTHONPATH, the namespace's path gets the repository root instead."""
    for p in (str(REPO / "bench"), str(REPO)):
        if p not in sys.path:
            sys.path.insert(0, p)
    import asr_flywheel

    try:
        import asr_flywheel.backends
    except ImportError:
        asr_flywheel.__path__.append(str(REPO))


importable_checkout()

from gpucheck.report import SUMMARY, T0, Tee, log, section  # noqa: E402


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dry-run", action="store_true", help="CPU only: build + forward + CPU-capable training paths")
    ap.add_argument("--tdt-steps", type=int, default=30, help="tiny TDT bf16-mixed steps")
    ap.add_argument("--fp32-steps", type=int, default=3, help="tiny TDT fp32 steps")
    ap.add_argument("--tiny-utts", type=int, default=40)
    ap.add_argument("--tiny-batch", type=int, default=4)
    ap.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--no-lightning-check", dest="lightning_check", action="store_false")
    ap.add_argument("--time-budget", type=float, default=360.0, help="skip optional stages after this many s")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--skip-full", action="store_true")
    args = ap.parse_args(argv)
    if args.dry_run:
        args.tdt_steps, args.fp32_steps, args.tiny_utts = 3, 1, 12
    return args


def open_output() -> Path:
    """$OUT (or a temp dir) with stdout/stderr teed into gpu_checks.log; offline hub settings."""
    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(tempfile.mkdtemp(prefix="gpu_checks_out_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    fh = open(out_dir / "gpu_checks.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    sys.stdout, sys.stderr = Tee(sys.stdout, fh), Tee(sys.stderr, fh)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return out_dir


def run_check(name: str, fn, device: str) -> bool:
    """Run one check, record ok/FAILED in the summary and go on; False when interrupted."""
    import torch

    section(name)
    t = time.time()
    try:
        fn()
        SUMMARY["status"][name] = f"ok ({time.time() - t:.0f}s)"
    except Exception as e:  # report and go on to the next check
        traceback.print_exc()
        SUMMARY["status"][name] = f"FAILED: {type(e).__name__}: {str(e)[:400]}"
        if device == "cuda":
            torch.cuda.empty_cache()
    except (KeyboardInterrupt, SystemExit) as e:  # e.g. `timeout -s INT`: still write the summary
        SUMMARY["status"][name] = f"INTERRUPTED: {type(e).__name__}"
        return False
    return True


def main() -> int:
    args = parse_args()
    out_dir = open_output()
    work = Path(tempfile.mkdtemp(prefix="gpu_checks_work_"))
    import torch

    if not args.dry_run and not torch.cuda.is_available():
        print("ERROR: torch.cuda.is_available() is False; use --dry-run for the CPU checks", flush=True)
        return 2
    device = "cpu" if args.dry_run else "cuda"
    log(f"device={device} dry_run={args.dry_run} out={out_dir} work={work} argv={sys.argv[1:]}")
    SUMMARY["dry_run"] = args.dry_run

    from gpucheck.preflight import preflight

    section("(0) preflight")
    try:
        pre = preflight(want_cuda=device == "cuda")
        SUMMARY["status"]["preflight"] = "ok"
    except Exception as e:  # without NeMo nothing else can run
        traceback.print_exc()
        SUMMARY["status"]["preflight"] = f"FAILED: {type(e).__name__}: {str(e)[:300]}"
        return finish(args, device, out_dir, 1)
    numba_ok = args.dry_run or pre.get("numba.cuda.kernel_compile_run") == "ok"

    from gpucheck.full_size import check_full
    from gpucheck.tiny_tdt import check_tiny

    checks = [
        ("a_tiny_tdt", functools.partial(check_tiny, args, device, work), args.skip_tiny),
        ("b_full_size", functools.partial(check_full, args, device, work, numba_ok), args.skip_full),
    ]
    for name, fn, skip in checks:
        if not skip and not run_check(name, fn, device):
            break
    ok = all(v.startswith("ok") for v in SUMMARY["status"].values()) and (numba_ok or args.skip_tiny)
    return finish(args, device, out_dir, 0 if ok else 1)


def finish(args, device: str, out_dir: Path, rc: int) -> int:
    import torch

    pre = SUMMARY.get("preflight", {})
    thr = SUMMARY.get("throughput", {})
    losses = SUMMARY.get("tdt_losses", {})
    all_l = [x for v in losses.values() for x in v] + [
        x for r in thr.values() if isinstance(r, dict) for x in r.get("losses", [])
    ]
    peak = [r["peak_mem_GB"] for r in thr.values() if isinstance(r, dict) and "peak_mem_GB" in r]
    line = {
        "ok": rc == 0,
        "status": SUMMARY["status"],
        "dry_run": args.dry_run,
        "device": pre.get("gpu", device),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "nemo": pre.get("nemo"),
        "lightning": pre.get("pkg:lightning"),
        "numba": pre.get("numba"),
        "numba_cuda": pre.get("pkg:numba-cuda"),
        "numba_kernel": pre.get("numba.cuda.kernel_compile_run"),
        "compat_shims": len(pre.get("compat_shims", [])),
        "tdt_loss_bf16": losses.get("bf16-mixed"),
        "tdt_loss_fp32": losses.get("fp32"),
        "tiny_trained_kind": SUMMARY.get("tiny", {}).get("train_32", {}).get("kind"),
        "tiny_validate_bf16": SUMMARY.get("tiny", {}).get("train_bf16-mixed", {}).get("validate"),
        "all_finite": bool(all_l) and all(math.isfinite(x) for x in all_l),
        "params": SUMMARY.get("params"),
        "throughput_mode": "direct" if thr else None,
        "throughput": {
            bs: (
                {k: r.get(k) for k in ("samples_per_s", "audio_s_per_s", "step_s_median", "peak_mem_GB", "loss")}
                if "samples_per_s" in r
                else r
            )
            for bs, r in thr.items()
        },
        "lightning_bs16": {k: v for k, v in SUMMARY.get("lightning_bs16", {}).items() if k != "losses"} or None,
        "peak_mem_GB": max(peak) if peak else None,
        "total_s": round(time.time() - T0, 1),
    }
    SUMMARY["summary_line"] = line
    (out_dir / "gpu_summary.json").write_text(json.dumps(SUMMARY, indent=1, default=str), encoding="utf-8")
    print(f"\nfull results: {out_dir / 'gpu_summary.json'}")
    print(("DRY_RUN_SUMMARY " if args.dry_run else "GPU_SUMMARY ") + json.dumps(line, default=str), flush=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
