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
before NeMo is imported (see `compat_shims`) and reported in the preflight and summary.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import random
import statistics
import sys
import tempfile
import time
import traceback
import wave
from pathlib import Path

T0 = time.time()
SUMMARY: dict = {"status": {}}
DURATIONS = [0, 1, 2, 3, 4]


# ----------------------------------------------------------------------------------------------- output
class _Tee:
    def __init__(self, stream, fh):
        self.stream, self.fh = stream, fh

    def write(self, s):
        self.stream.write(s)
        with contextlib.suppress(ValueError):  # log file already closed at interpreter exit
            self.fh.write(s)
        return len(s)

    def flush(self):
        self.stream.flush()
        with contextlib.suppress(ValueError):
            self.fh.flush()

    def isatty(self):
        return False

    def fileno(self):
        return self.stream.fileno()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def section(title: str) -> None:
    print(f"\n{'=' * 20} {title} {'=' * 20}", flush=True)


def fnum(v):
    try:
        return float(v.detach().float().cpu()) if hasattr(v, "detach") else float(v)
    except Exception:
        return str(v)


# ----------------------------------------------------------------------------------------------- compat
def compat_shims() -> list[str]:
    """Make NeMo 3.0.0 importable with lightning >= 2.6 (it declares lightning<=2.4.0). Must run before NeMo
    is imported. Each shim applies only when needed, so with lightning 2.4/2.5 this does nothing."""
    applied = []
    # 1) nv_one_logger's OneLoggerPTLTrainer.save_checkpoint(weights_only: bool) vs lightning 2.6's
    #    Optional[bool]: the `overrides` package raises TypeError at class creation. Relax that check only.
    try:
        import overrides  # noqa: F401

        ov = sys.modules.get("overrides.overrides")
        if ov is not None and hasattr(ov, "ensure_signature_is_compatible"):
            orig = ov.ensure_signature_is_compatible

            def lenient(super_callable, sub_callable, is_static=False, *a, **k):
                try:
                    return orig(super_callable, sub_callable, is_static, *a, **k)
                except TypeError as e:
                    applied.append(f"overrides signature check relaxed: {str(e)[:140]}")

            ov.ensure_signature_is_compatible = lenient
    except ImportError:
        pass
    # 2) lightning 2.6.x (x >= 2) removed NeptuneLogger; nemo.utils.exp_manager imports it by name.
    try:
        import lightning.pytorch.loggers as pl_loggers

        if not hasattr(pl_loggers, "NeptuneLogger"):

            class NeptuneLogger(pl_loggers.Logger):  # placeholder, never used here
                def __init__(self, *a, **k):
                    raise ImportError("NeptuneLogger is not available in this lightning version")

            pl_loggers.NeptuneLogger = NeptuneLogger
            applied.append("lightning.pytorch.loggers.NeptuneLogger placeholder added")
    except ImportError as e:
        applied.append(f"lightning import failed: {e}")
    return applied


def quiet_nemo() -> None:
    import logging

    from nemo.utils import logging as nemo_logging

    nemo_logging.setLevel(logging.ERROR)

    class _ErrorsOnly(logging.Filter):
        def filter(self, record):
            return record.levelno >= logging.ERROR

    logging.getLogger("nemo_logger").addFilter(_ErrorsOnly())


# ----------------------------------------------------------------------------------------------- synthetic text / audio
SYL_C = [*"bcdfghjklmnprstvwz", "ch", "sh", "th", "st", "tr", "pl", "gr", "br"]
SYL_V = ["a", "e", "i", "o", "u", "ai", "ea", "ou", "y"]
COMMON = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "for",
    "with",
    "give",
    "start",
    "stop",
    "patient",
    "grams",
    "milligrams",
    "before",
    "after",
    "incision",
    "daily",
    "left",
    "right",
]


def synthetic_sentences(n_sent: int, n_words: int, seed: int, min_w: int = 3, max_w: int = 14) -> list[str]:
    rng = random.Random(seed)
    lex: set[str] = set()
    while len(lex) < n_words:
        k = rng.randint(1, 4)
        lex.add("".join(rng.choice(SYL_C) + rng.choice(SYL_V) for _ in range(k)) + rng.choice(["", "", "n", "s", "l"]))
    words = sorted(lex)
    return [
        " ".join(
            rng.choice(words) if rng.random() < 0.6 else rng.choice(COMMON) for _ in range(rng.randint(min_w, max_w))
        )
        for _ in range(n_sent)
    ]


def train_spm(texts: list[str], out_dir: Path, vocab_size: int) -> Path:
    from asr_flywheel.backends.nemo.tiny import train_tokenizer

    return Path(train_tokenizer(texts, out_dir, vocab_size))


def write_wav(path: Path, samples, sr: int = 16000) -> None:
    """16-bit mono PCM with the stdlib `wave` module (no soundfile needed to write)."""
    import numpy as np

    pcm = (np.clip(samples, -1.0, 1.0) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes(pcm.tobytes())


def write_corpus(out_dir: Path, texts: list[str], n_val: int, seed: int = 0) -> tuple[str, str]:
    """One WAV per sentence: a tone per word (pitch from the word) + noise, so audio depends on text."""
    import numpy as np

    rng = np.random.default_rng(seed)
    (out_dir / "wav").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, text in enumerate(texts):
        segs = []
        for w in text.split():
            f0 = 120 + (sum(map(ord, w)) % 40) * 20
            n = int(16000 * (0.10 + 0.04 * len(w)))
            t = np.arange(n) / 16000
            segs += [0.3 * np.sin(2 * np.pi * f0 * t) * np.hanning(n), np.zeros(800)]
        x = np.concatenate(segs)
        x = x + 0.01 * rng.standard_normal(len(x))
        p = out_dir / "wav" / f"utt{i:04d}.wav"
        write_wav(p, x)
        rows.append({"audio_filepath": str(p), "text": text, "duration": round(len(x) / 16000, 3)})
    paths = []
    for name, part in (("train.jsonl", rows[n_val:]), ("validation.jsonl", rows[:n_val])):
        (out_dir / name).write_text("".join(json.dumps(r) + "\n" for r in part), encoding="utf-8")
        paths.append(str(out_dir / name))
    return paths[0], paths[1]


# ----------------------------------------------------------------------------------------------- model configs
def parakeet_tdt_cfg(tok_dir: Path, tdt: bool = True) -> dict:
    """parakeet-tdt-0.6b-v2 architecture (random init). tdt=False: same network with the RNNT loss (CPU-capable)."""
    from asr_flywheel.backends.nemo.tiny import parakeet_tdt_0_6b_v2

    cfg = parakeet_tdt_0_6b_v2(tok_dir, kind="tdt" if tdt else "rnnt")
    cfg["spec_augment"].update(freq_masks=2, time_masks=10, freq_width=27, time_width=0.05)  # Parakeet's values
    return cfg


def tiny_model_cfg(kind: str, tok_dir: Path) -> dict:
    from asr_flywheel.backends.nemo.tiny import tiny_config

    return tiny_config(kind, tok_dir)


# ----------------------------------------------------------------------------------------------- (0) preflight
def preflight(want_cuda: bool) -> dict:
    import importlib.metadata as md

    import torch

    info: dict = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch.version.cuda": torch.version.cuda,
        "torch.cuda.is_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(
            {
                "gpu": torch.cuda.get_device_name(0),
                "gpu_mem_GiB": round(p.total_memory / 2**30, 1),
                "capability": f"{p.major}.{p.minor}",
                "bf16_supported": torch.cuda.is_bf16_supported(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            }
        )
    try:
        import numba

        info["numba"] = numba.__version__
        from numba import cuda as ncuda

        info["numba.cuda module"] = getattr(ncuda, "__file__", "?")
        info["numba.cuda.is_available"] = bool(ncuda.is_available())
        try:
            from cuda.pathfinder import load_nvidia_dynamic_lib

            info["libnvvm"] = load_nvidia_dynamic_lib("nvvm").abs_path
        except Exception as e:
            info["libnvvm"] = f"not found by cuda.pathfinder ({type(e).__name__}: {str(e)[:160]})"
        if want_cuda and info["numba.cuda.is_available"]:
            try:
                import numpy as np

                @ncuda.jit
                def _add1(a):
                    i = ncuda.grid(1)
                    if i < a.size:
                        a[i] += 1.0

                arr = ncuda.to_device(np.zeros(64, dtype=np.float32))
                _add1[1, 64](arr)
                ok = float(arr.copy_to_host().sum()) == 64.0
                info["numba.cuda.kernel_compile_run"] = "ok" if ok else "WRONG RESULT"
            except Exception as e:
                info["numba.cuda.kernel_compile_run"] = f"FAILED {type(e).__name__}: {str(e)[:400]}"
            try:
                info["numba.cuda.runtime_version"] = list(ncuda.cudadrv.runtime.get_version())
            except Exception as e:
                info["numba.cuda.runtime_version"] = f"{type(e).__name__}: {str(e)[:200]}"
    except Exception as e:
        info["numba"] = f"FAILED {type(e).__name__}: {e}"
    for pkg in (
        "nemo_toolkit",
        "lightning",
        "pytorch-lightning",
        "transformers",
        "huggingface-hub",
        "numpy",
        "numba-cuda",
        "cuda-bindings",
        "cuda-pathfinder",
        "lhotse",
        "omegaconf",
        "sentencepiece",
        "soundfile",
        "librosa",
        "datasets",
        "torchmetrics",
    ):
        try:
            info[f"pkg:{pkg}"] = md.version(pkg)
        except md.PackageNotFoundError:
            info[f"pkg:{pkg}"] = None
    info["compat_shims"] = compat_shims()
    t = time.time()
    import nemo
    import nemo.collections.asr
    from nemo.core.utils import numba_utils

    info["nemo"] = nemo.__version__
    info["nemo_from"] = os.path.dirname(nemo.__file__)
    info["import_nemo.collections.asr_s"] = round(time.time() - t, 1)
    import lightning

    info["lightning_from"] = os.path.dirname(lightning.__file__)
    info["nemo.numba_cuda_is_supported"] = numba_utils.numba_cuda_is_supported("0.53.0")
    try:
        info["nemo.numba_fp16"] = list(numba_utils.is_numba_cuda_fp16_supported(return_reason=True))
    except Exception as e:
        info["nemo.numba_fp16"] = f"{type(e).__name__}: {e}"
    quiet_nemo()
    for k, v in info.items():
        print(f"  {k:34s} {v}")
    SUMMARY["preflight"] = info
    if want_cuda and info.get("numba.cuda.kernel_compile_run") != "ok":
        log(
            "WARNING: numba CUDA cannot compile/run a kernel -> the TDT loss will fail. Check libnvvm above "
            "(numba-cuda needs NVVM: pip 'numba-cuda[cu13]' or a CUDA toolkit). Throughput falls back to a proxy loss."
        )
    return info


# ----------------------------------------------------------------------------------------------- training helpers
def loss_recorder():
    import torch
    from lightning.pytorch.callbacks import Callback

    class LossRecorder(Callback):
        def __init__(self):
            self.losses, self.times = [], []

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self._t = time.perf_counter()

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.times.append(time.perf_counter() - self._t)
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            v = float(loss.detach().float().cpu()) if loss is not None else float("nan")
            self.losses.append(v)
            print(f"    step {trainer.global_step:3d}  loss {v:.4f}  ({self.times[-1]:.3f}s)", flush=True)

    return LossRecorder()


def make_trainer(accelerator: str, precision, max_steps: int, callbacks, val_batches=0):
    """Validation never runs inside fit() (check_val_every_n_epoch is huge); it is run separately afterwards
    with trainer.validate(), so a decoding problem cannot hide the training-loss result."""
    from lightning.pytorch import Trainer

    return Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=max_steps,
        max_epochs=1000,
        gradient_clip_val=1.0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        log_every_n_steps=5,
        limit_val_batches=val_batches,
        check_val_every_n_epoch=100000,
        callbacks=callbacks,
    )


def lightning_fit(model_cfg: dict, accelerator: str, precision, steps: int, val_batches, seed: int = 0) -> dict:
    """The stock NeMo fine-tuning sequence: model -> Trainer -> set_trainer -> setup_* -> fit [-> validate]."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(model_cfg))
    rec = loss_recorder()
    trainer = make_trainer(accelerator, precision, steps, [rec], val_batches)
    model.set_trainer(trainer)
    model.setup_training_data(model.cfg.train_ds)
    model.setup_multiple_validation_data(model.cfg.validation_ds)
    model.setup_optimization(model.cfg.optim)
    t = time.time()
    trainer.fit(model)
    out = {
        "precision": str(precision),
        "steps": trainer.global_step,
        "losses": [round(x, 4) for x in rec.losses],
        "all_finite": bool(rec.losses) and all(math.isfinite(x) for x in rec.losses),
        "fit_s": round(time.time() - t, 1),
        "median_step_s": round(statistics.median(rec.times), 4) if rec.times else None,
        "loss_class": type(getattr(model.loss, "_loss", model.loss)).__name__,
        "train_metrics": {k: fnum(v) for k, v in trainer.callback_metrics.items()},
    }
    if val_batches:
        t = time.time()
        try:  # greedy (TDT) decoding of the validation set + WER
            res = trainer.validate(model, verbose=False)
            out["validate"] = {
                "s": round(time.time() - t, 1),
                "metrics": {k: fnum(v) for k, v in (res[0] if res else {}).items()},
            }
        except Exception as e:  # reported, does not hide the training result
            traceback.print_exc()
            out["validate"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
    del model, trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
    return out


def synthetic_batch(bs: int, seconds: float, vocab: int, device, tokens_per_s: float, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    n = int(seconds * 16000)
    u = max(1, int(seconds * tokens_per_s))
    sig = (0.1 * torch.randn(bs, n, generator=g)).to(device)
    tok = torch.randint(0, vocab, (bs, u), generator=g).to(device)
    return (
        sig,
        torch.full((bs,), n, dtype=torch.long, device=device),
        tok,
        torch.full((bs,), u, dtype=torch.long, device=device),
    )


def step_loss(model, batch, proxy: bool):
    """The loss computation of EncDecRNNTModel.training_step (fused joint), without logging/trainer."""
    signal, signal_len, transcript, transcript_len = batch
    encoded, encoded_len = model.forward(input_signal=signal, input_signal_length=signal_len)
    decoder, target_length, _ = model.decoder(targets=transcript, target_length=transcript_len)
    if proxy:  # numba CUDA unusable: same network, stand-in loss (log-sum-exp of the full joint)
        joint = model.joint.joint(encoded.transpose(1, 2), decoder.transpose(1, 2))
        return joint.float().logsumexp(-1).mean()
    if model.joint.fuse_loss_wer:
        loss, _, _, _ = model.joint(
            encoder_outputs=encoded,
            decoder_outputs=decoder,
            encoder_lengths=encoded_len,
            transcripts=transcript,
            transcript_lengths=transcript_len,
            compute_wer=False,
        )
        return loss
    joint = model.joint(encoder_outputs=encoded, decoder_outputs=decoder)
    return model.loss(log_probs=joint, targets=transcript, input_lengths=encoded_len, target_lengths=target_length)


def direct_train(
    model,
    bs: int,
    seconds: float,
    warmup: int,
    steps: int,
    device: str,
    bf16: bool,
    proxy: bool = False,
    tokens_per_s: float = 6.0,
) -> dict:
    """forward + loss + backward + grad clip + AdamW step on a fixed synthetic batch; CUDA-synchronised timing."""
    import torch

    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, betas=(0.9, 0.98), weight_decay=1e-3)
    batch = synthetic_batch(bs, seconds, model.tokenizer.vocab_size, device, tokens_per_s)
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)
    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    times, losses = [], []
    try:
        for i in range(warmup + steps):
            sync()
            t = time.perf_counter()
            with torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=bf16):
                loss = step_loss(model, batch, proxy)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            opt.zero_grad(set_to_none=True)
            sync()
            dt = time.perf_counter() - t
            losses.append(float(loss.detach().float().cpu()))
            times.append(dt)
            kind = "warm" if i < warmup else "step"
            print(f"    bs={bs} {kind} {i:2d}  loss {losses[-1]:.4f}  {dt:.3f}s", flush=True)
    finally:
        del opt
        model.zero_grad(set_to_none=True)
    timed = times[warmup:]
    total = sum(timed)
    rec = {
        "batch": bs,
        "clip_s": seconds,
        "tokens_per_clip": max(1, int(seconds * tokens_per_s)),
        "bf16_autocast": bf16,
        "loss": "proxy" if proxy else model.cfg.loss.loss_name,
        "warmup_steps": warmup,
        "timed_steps": len(timed),
        "step_s_median": round(statistics.median(timed), 4),
        "step_s_mean": round(total / len(timed), 4),
        "samples_per_s": round(bs * len(timed) / total, 2),
        "audio_s_per_s": round(bs * seconds * len(timed) / total, 1),
        "first_step_s": round(times[0], 2),
        "losses": [round(x, 4) for x in losses],
        "all_finite": all(math.isfinite(x) for x in losses),
    }
    if device == "cuda":
        rec["peak_mem_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
        rec["peak_reserved_GB"] = round(torch.cuda.max_memory_reserved() / 1e9, 2)
    return rec


def lightning_throughput(
    model, bs: int, seconds: float, warmup: int, steps: int, tokens_per_s: float = 6.0, accelerator: str = "gpu"
) -> dict:
    """Same model through Lightning (bf16-mixed), in-memory dataloader of identical synthetic clips."""
    import torch
    from omegaconf import OmegaConf

    cpu_batch = synthetic_batch(bs, seconds, model.tokenizer.vocab_size, "cpu", tokens_per_s)

    class DS(torch.utils.data.Dataset):
        def __len__(self):
            return bs * (warmup + steps)

        def __getitem__(self, i):
            j = i % bs
            return tuple(x[j] for x in cpu_batch)

    gpu = accelerator == "gpu"
    model._train_dl = torch.utils.data.DataLoader(
        DS(), batch_size=bs, shuffle=False, num_workers=0, pin_memory=gpu, drop_last=True
    )
    model._validation_dl = None
    rec = loss_recorder()
    trainer = make_trainer(accelerator, "bf16-mixed", warmup + steps, [rec])
    model.set_trainer(trainer)
    model.setup_optimization(OmegaConf.create(model.cfg.optim))
    if gpu:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    trainer.fit(model)
    timed = rec.times[warmup:]
    total = sum(timed)
    out = {
        "batch": bs,
        "clip_s": seconds,
        "timed_steps": len(timed),
        "step_s_median": round(statistics.median(timed), 4),
        "samples_per_s": round(bs * len(timed) / total, 2),
        "audio_s_per_s": round(bs * seconds * len(timed) / total, 1),
        "losses": [round(x, 4) for x in rec.losses],
        "all_finite": all(math.isfinite(x) for x in rec.losses),
    }
    if gpu:
        out["peak_mem_GB"] = round(torch.cuda.max_memory_allocated() / 1e9, 2)
    return out


# ----------------------------------------------------------------------------------------------- (a) tiny TDT
def check_tiny(args, device: str, work: Path) -> None:
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    texts = synthetic_sentences(args.tiny_utts, 60, seed=1, max_w=8)
    tok = train_spm(texts + synthetic_sentences(400, 60, seed=1), work / "tok_tiny", 128)
    n_val = max(4, args.tiny_utts // 5)
    tr, va = write_corpus(work / "tiny_data", texts, n_val)
    durs = [json.loads(line)["duration"] for line in Path(tr).read_text(encoding="utf-8").splitlines()]
    log(f"tiny corpus: {len(durs)} train / {n_val} val clips, {min(durs):.1f}-{max(durs):.1f} s; tokenizer {tok}")

    def cfg_for(kind: str) -> dict:
        cfg = tiny_model_cfg(kind, tok)
        pin = device == "cuda"
        cfg.setdefault("train_ds", {"sample_rate": 16000})
        cfg.setdefault("validation_ds", {"sample_rate": 16000, "shuffle": False, "use_start_end_token": False})
        cfg["train_ds"].update(
            manifest_filepath=tr,
            batch_size=args.tiny_batch,
            shuffle=True,
            num_workers=0,
            pin_memory=pin,
            max_duration=30.0,
            min_duration=0.1,
        )
        cfg["validation_ds"].update(manifest_filepath=va, batch_size=args.tiny_batch, num_workers=0, pin_memory=pin)
        return cfg

    out: dict = {"device": device}
    # the TDT model itself: build, check the TDT pieces, forward (and, on CPU, greedy TDT decoding)
    cfg = cfg_for("tdt")
    torch.manual_seed(0)
    m = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg)).to(device)
    out["tdt_model"] = {
        "params": sum(p.numel() for p in m.parameters()),
        "vocab": m.tokenizer.vocab_size,
        "joint_extra_outputs": m.joint.num_extra_outputs,
        "loss_class": type(getattr(m.loss, "_loss", m.loss)).__name__,
        "decoding_model_type": m.cfg.decoding.get("model_type"),
    }
    assert m.joint.num_extra_outputs == len(DURATIONS), out["tdt_model"]
    m.eval()
    with torch.no_grad():
        x = 0.1 * torch.randn(2, 16000, device=device)
        enc, enc_len = m.forward(input_signal=x, input_signal_length=torch.tensor([16000, 12000], device=device))
        out["tdt_model"]["encoder_out(2x1s)"] = list(enc.shape)
        if args.dry_run:
            t = time.time()
            hyps = m.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=enc_len)
            out["tdt_model"]["greedy_tdt_decode"] = {"n": len(hyps), "s": round(time.time() - t, 2)}
    if args.dry_run:  # the validation step of the TDT model (fused joint, greedy TDT decoding + WER), on CPU
        m.setup_multiple_validation_data(m.cfg.validation_ds)
        res = make_trainer("cpu", 32, 1, [], val_batches=1).validate(m, verbose=False)
        out["tdt_model"]["validate_cpu"] = {k: fnum(v) for k, v in (res[0] if res else {}).items()}
    print("  tiny TDT model:", json.dumps(out["tdt_model"]))
    del m

    accel = "gpu" if device == "cuda" else "cpu"
    kind = "tdt" if device == "cuda" else "rnnt"  # the TDT loss is CUDA-only; dry run trains RNNT, same code path
    runs = [("bf16-mixed", args.tdt_steps), (32, args.fp32_steps)]
    for precision, steps in runs:
        log(f"tiny {kind.upper()} training: {steps} steps, precision={precision}, {accel}")
        r = lightning_fit(cfg_for(kind), accel, precision, steps, val_batches=(1 if args.dry_run else 1.0))
        r["kind"] = kind
        out[f"train_{precision}"] = r
        print(f"  -> {json.dumps(r)}")
        assert r["losses"], f"no training step ran at precision {precision}"
        assert r["all_finite"], f"non-finite {kind} loss at precision {precision}: {r['losses']}"

    if args.dry_run:  # the direct-loop code path with the real fused joint + numba RNNT loss, tiny model
        torch.manual_seed(0)
        m = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg_for("rnnt")))
        r = direct_train(m, 2, 1.5, 1, 1, "cpu", bf16=True)
        out["direct_loop_rnnt_cpu"] = r
        assert r["all_finite"], r
        r = lightning_throughput(m, 2, 1.5, 1, 1, accelerator="cpu")
        out["lightning_throughput_rnnt_cpu"] = r
        print("  ", json.dumps(r))
        assert r["all_finite"], r
        del m
    SUMMARY["tiny"] = out
    SUMMARY["tdt_losses"] = {"bf16-mixed": out["train_bf16-mixed"]["losses"], "fp32": out["train_32"]["losses"]}


# ----------------------------------------------------------------------------------------------- (b) full size
def check_full(args, device: str, work: Path, numba_ok: bool) -> None:
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
    SUMMARY["params"] = n
    model = model.to(device)
    model.eval()
    with torch.no_grad(), torch.autocast(device_type=device, dtype=torch.bfloat16):
        x = 0.1 * torch.randn(1, 32000, device=device)
        t = time.time()
        enc, _ = model.forward(input_signal=x, input_signal_length=torch.tensor([32000], device=device))
        info["encoder_out(1x2s)"] = list(enc.shape)
        info["forward_1x2s_s"] = round(time.time() - t, 2)
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
    thr: dict = {}
    SUMMARY["throughput"] = thr
    SUMMARY["throughput_mode"] = (
        "direct: forward + tdt loss (fused joint) + backward + clip + AdamW step under "
        "torch.autocast(bf16); fixed synthetic batch already on the GPU"
    )
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
    if args.lightning_check and not proxy:
        if time.time() - T0 > args.time_budget:
            SUMMARY["lightning_bs16"] = {"skipped": "time budget"}
        else:
            log("secondary: the same model through Lightning, bs=16, bf16-mixed")
            try:
                SUMMARY["lightning_bs16"] = lightning_throughput(
                    model, 16, args.seconds, args.warmup, args.steps, accelerator="gpu" if device == "cuda" else "cpu"
                )
                print("  ", json.dumps(SUMMARY["lightning_bs16"]))
            except Exception as e:  # secondary number, must not fail the run
                traceback.print_exc()
                SUMMARY["lightning_bs16"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}


# ----------------------------------------------------------------------------------------------- main
def main() -> int:
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
    args = ap.parse_args()

    out_dir = Path(os.environ["OUT"]) if os.environ.get("OUT") else Path(tempfile.mkdtemp(prefix="gpu_checks_out_"))
    out_dir.mkdir(parents=True, exist_ok=True)
    fh = open(out_dir / "gpu_checks.log", "a", encoding="utf-8")  # noqa: SIM115 - open for the whole run
    sys.stdout, sys.stderr = _Tee(sys.stdout, fh), _Tee(sys.stderr, fh)
    work = Path(tempfile.mkdtemp(prefix="gpu_checks_work_"))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    repo_root = str(Path(__file__).resolve().parent.parent)
    if repo_root not in sys.path:
        sys.path.insert(0, repo_root)

    import torch

    if args.dry_run:
        args.tdt_steps, args.fp32_steps, args.tiny_utts = 3, 1, 12
        device = "cpu"
    else:
        if not torch.cuda.is_available():
            print("ERROR: torch.cuda.is_available() is False; use --dry-run for the CPU checks", flush=True)
            return 2
        device = "cuda"
    log(f"device={device} dry_run={args.dry_run} out={out_dir} work={work} argv={sys.argv[1:]}")
    SUMMARY["dry_run"] = args.dry_run

    section("(0) preflight")
    try:
        pre = preflight(want_cuda=device == "cuda")
        SUMMARY["status"]["preflight"] = "ok"
    except Exception as e:  # without NeMo nothing else can run
        traceback.print_exc()
        SUMMARY["status"]["preflight"] = f"FAILED: {type(e).__name__}: {str(e)[:300]}"
        return finish(args, device, out_dir, 1)
    numba_ok = args.dry_run or pre.get("numba.cuda.kernel_compile_run") == "ok"

    for name, fn, skip in (
        ("a_tiny_tdt", lambda: check_tiny(args, device, work), args.skip_tiny),
        ("b_full_size", lambda: check_full(args, device, work, numba_ok), args.skip_full),
    ):
        if skip:
            continue
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
