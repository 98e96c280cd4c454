"""(b) The parakeet-tdt-0.6b-v2 architecture with random weights: parameter count and bf16 training throughput.

Batches go straight to the model (forward + tdt loss + backward + clip + AdamW step, the calls of
EncDecRNNTModel.training_step): no dataloader, logging or Lightning-version dependence, so it is the robust
number. A secondary Lightning measurement (bs 16) shows the trainer overhead when time allows.
"""

from __future__ import annotations

import json
import time
import traceback
from pathlib import Path

from asr_flywheel.backends.nemo.tiny import parakeet_tdt_0_6b_v2
from gpucheck.data import synthetic_sentences, train_spm
from gpucheck.report import SUMMARY, T0, log
from gpucheck.training import direct_train, lightning_throughput

#: Parakeet's own SpecAugment (the tiny configs use lighter masks).
PARAKEET_SPEC_AUGMENT = {"freq_masks": 2, "time_masks": 10, "freq_width": 27, "time_width": 0.05}


def parakeet_tdt_cfg(tok_dir: Path, tdt: bool = True) -> dict:
    """parakeet-tdt-0.6b-v2 architecture (random init). tdt=False: same network with the RNNT loss (CPU-capable)."""
    cfg = parakeet_tdt_0_6b_v2(tok_dir, kind="tdt" if tdt else "rnnt")
    cfg["spec_augment"].update(PARAKEET_SPEC_AUGMENT)
    return cfg


def build_full(work: Path, device: str):
    """(model on `device`, build record): parameter counts per module and a 2 s bf16 forward pass."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    t = time.time()
    tok = train_spm(synthetic_sentences(20000, 6000, seed=2), work / "tok_1024", 1024)
    log(f"1024-piece tokenizer in {time.time() - t:.1f}s")
    t = time.time()
    torch.manual_seed(0)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(parakeet_tdt_cfg(tok, tdt=True)))
    n = sum(p.numel() for p in model.parameters())
    info = {
        "params": n,
        "params_M": round(n / 1e6, 2),
        "per_module_M": {
            k: round(sum(p.numel() for p in getattr(model, k).parameters()) / 1e6, 2)
            for k in ("preprocessor", "encoder", "decoder", "joint")
        },
        "vocab": model.tokenizer.vocab_size,
        "joint_out": model.joint.num_classes_with_blank,
        "loss_class": type(getattr(model.loss, "_loss", model.loss)).__name__,
        "build_s": round(time.time() - t, 1),
    }
    log(f"full-size model: {n:,} parameters ({info['per_module_M']}), joint out {info['joint_out']}")
    model = model.to(device)
    model.eval()
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16):
        x = 0.1 * torch.randn(1, 32000, device=device)
        t = time.time()
        enc, _ = model.forward(input_signal=x, input_signal_length=torch.tensor([32000], device=device))
        info["encoder_out(1x2s)"] = list(enc.shape)
        info["forward_1x2s_s"] = round(time.time() - t, 2)
    return model, info


def measure_throughput(model, args, device: str, proxy: bool) -> dict:
    """Direct-loop throughput per batch size; later sizes are skipped once the time budget is spent."""
    import torch

    thr: dict = {}
    for bs in args.batch_sizes:
        if thr and time.time() - T0 > args.time_budget:
            log(f"skipping bs={bs}: time budget {args.time_budget}s used")
            thr[str(bs)] = {"skipped": "time budget"}
            continue
        log(f"throughput bs={bs} x {args.seconds}s clips, bf16 autocast, {args.warmup} warm-up + {args.steps} timed")
        try:
            r = direct_train(model, bs, args.seconds, args.warmup, args.steps, device, bf16=True, proxy=proxy)
        except torch.OutOfMemoryError as e:
            thr[str(bs)] = {"error": f"OOM: {str(e)[:200]}"}
            torch.cuda.empty_cache()
            continue
        thr[str(bs)] = r
        log(
            f"  bs={bs}: {r['samples_per_s']} samples/s, {r['audio_s_per_s']} audio-s/s, "
            f"median step {r['step_s_median']}s, peak {r.get('peak_mem_GB')} GB"
        )
        assert r["all_finite"], f"non-finite loss in the full-size run: {r['losses']}"
    return thr


def lightning_check(model, args, device: str) -> dict:
    """The same model through Lightning at bs 16: a secondary number that must not fail the run."""
    if time.time() - T0 > args.time_budget:
        return {"skipped": "time budget"}
    log("secondary: the same model through Lightning, bs=16, bf16-mixed")
    try:
        accel = "gpu" if device == "cuda" else "cpu"
        r = lightning_throughput(model, 16, args.seconds, args.warmup, args.steps, accelerator=accel)
        print("  ", json.dumps(r))
        return r
    except Exception as e:
        traceback.print_exc()
        return {"error": f"{type(e).__name__}: {str(e)[:300]}"}


def check_full(args, device: str, work: Path, numba_ok: bool) -> None:
    model, info = build_full(work, device)
    SUMMARY["params"] = info["params"]
    SUMMARY["full_build"] = info
    print("  ", json.dumps(info))
    if args.dry_run:
        log("dry run: one direct training step of the full-size model on CPU (proxy loss: tdt is CUDA-only)")
        r = direct_train(model, 1, 1.0, 0, 1, "cpu", bf16=True, proxy=True)
        SUMMARY["full_direct_cpu"] = r
        print("  ", json.dumps(r))
        assert r["all_finite"], r
        return
    proxy = not numba_ok
    if proxy:
        log("numba CUDA kernel check failed -> throughput with a PROXY loss (not the TDT kernel)")
    SUMMARY["throughput_mode"] = (
        "direct: forward + tdt loss (fused joint) + backward + clip + AdamW step under "
        "torch.autocast(bf16); fixed synthetic batch already on the GPU"
    )
    SUMMARY["throughput"] = measure_throughput(model, args, device, proxy)
    if args.lightning_check and not proxy:
        SUMMARY["lightning_bs16"] = lightning_check(model, args, device)
