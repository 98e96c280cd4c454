"""Training paths measured by the GPU checks: Lightning fit, direct loop, Lightning throughput."""

from __future__ import annotations

import math
import statistics
import time
import traceback

import torch
from lightning.pytorch import Callback

from gpucheck.report import fnum


class LossRecorder(Callback):
    """Per-step loss and CUDA-synchronised step time, printed as they come."""

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


class RepeatedBatch(torch.utils.data.Dataset):
    """`n` samples cycling through one synthetic batch: an in-memory dataloader with no I/O."""

    def __init__(self, batch: tuple, n: int):
        self.batch, self.n, self.bs = batch, n, len(batch[0])

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i):
        return tuple(x[i % self.bs] for x in self.batch)


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
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(seed)
    model = EncDecRNNTBPEModel(cfg=OmegaConf.create(model_cfg))
    rec = LossRecorder()
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
    from omegaconf import OmegaConf

    cpu_batch = synthetic_batch(bs, seconds, model.tokenizer.vocab_size, "cpu", tokens_per_s)

    gpu = accelerator == "gpu"
    model._train_dl = torch.utils.data.DataLoader(
        RepeatedBatch(cpu_batch, bs * (warmup + steps)),
        batch_size=bs,
        shuffle=False,
        num_workers=0,
        pin_memory=gpu,
        drop_last=True,
    )
    model._validation_dl = None
    rec = LossRecorder()
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
