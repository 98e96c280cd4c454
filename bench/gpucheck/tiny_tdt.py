"""(a) The tiny TDT model: the repo's own `backends.nemo.tiny` config, trained with the real TDT loss on CUDA.

On CPU (--dry-run) the TDT loss cannot run, so the same Lightning path trains the RNNT variant, and the TDT
model is checked by a forward pass, greedy TDT decoding and `trainer.validate()`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from asr_flywheel.backends.nemo.tiny import TDT_DURATIONS, tiny_config
from gpucheck.data import synthetic_sentences, train_spm, write_corpus
from gpucheck.report import SUMMARY, fnum, log
from gpucheck.training import direct_train, lightning_fit, lightning_throughput, make_trainer


def tiny_model_cfg(kind: str, tok: Path, train: str, val: str, batch: int, device: str) -> dict:
    """The tiny model's config with its data sections pointing at the synthetic corpus."""
    cfg = tiny_config(kind, tok)
    pin = device == "cuda"
    cfg["train_ds"].update(
        manifest_filepath=train,
        batch_size=batch,
        shuffle=True,
        num_workers=0,
        pin_memory=pin,
        max_duration=30.0,
        min_duration=0.1,
    )
    cfg["validation_ds"].update(manifest_filepath=val, batch_size=batch, num_workers=0, pin_memory=pin)
    return cfg


def tiny_corpus(args, work: Path) -> tuple[Path, str, str]:
    """(tokenizer dir, train manifest, validation manifest) of synthetic tone 'speech'."""
    texts = synthetic_sentences(args.tiny_utts, 60, seed=1, max_w=8)
    tok = train_spm(texts + synthetic_sentences(400, 60, seed=1), work / "tok_tiny", 128)
    n_val = max(4, args.tiny_utts // 5)
    tr, va = write_corpus(work / "tiny_data", texts, n_val)
    durs = [json.loads(line)["duration"] for line in Path(tr).read_text(encoding="utf-8").splitlines()]
    log(f"tiny corpus: {len(durs)} train / {n_val} val clips, {min(durs):.1f}-{max(durs):.1f} s; tokenizer {tok}")
    return tok, tr, va


def inspect_tdt_model(cfg: dict, device: str, dry_run: bool) -> dict:
    """Build the TDT model, check its TDT pieces, run a forward pass (and on CPU: greedy TDT decoding and the
    validation step with the fused joint)."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    m = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg)).to(device)
    info = {
        "params": sum(p.numel() for p in m.parameters()),
        "vocab": m.tokenizer.vocab_size,
        "joint_extra_outputs": m.joint.num_extra_outputs,
        "loss_class": type(getattr(m.loss, "_loss", m.loss)).__name__,
        "decoding_model_type": m.cfg.decoding.get("model_type"),
    }
    assert m.joint.num_extra_outputs == len(TDT_DURATIONS), info
    m.eval()
    with torch.no_grad():
        x = 0.1 * torch.randn(2, 16000, device=device)
        enc, enc_len = m.forward(input_signal=x, input_signal_length=torch.tensor([16000, 12000], device=device))
        info["encoder_out(2x1s)"] = list(enc.shape)
        if dry_run:
            t = time.time()
            hyps = m.decoding.rnnt_decoder_predictions_tensor(encoder_output=enc, encoded_lengths=enc_len)
            info["greedy_tdt_decode"] = {"n": len(hyps), "s": round(time.time() - t, 2)}
    if dry_run:
        m.setup_multiple_validation_data(m.cfg.validation_ds)
        res = make_trainer("cpu", 32, 1, [], val_batches=1).validate(m, verbose=False)
        info["validate_cpu"] = {k: fnum(v) for k, v in (res[0] if res else {}).items()}
    print("  tiny TDT model:", json.dumps(info))
    return info


def dry_run_loops(cfg: dict) -> dict:
    """The direct loop and the Lightning-throughput code with the real fused joint + numba RNNT loss, on CPU."""
    import torch
    from nemo.collections.asr.models import EncDecRNNTBPEModel
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    m = EncDecRNNTBPEModel(cfg=OmegaConf.create(cfg))
    out = {"direct_loop_rnnt_cpu": direct_train(m, 2, 1.5, 1, 1, "cpu", bf16=True)}
    assert out["direct_loop_rnnt_cpu"]["all_finite"], out
    out["lightning_throughput_rnnt_cpu"] = r = lightning_throughput(m, 2, 1.5, 1, 1, accelerator="cpu")
    print("  ", json.dumps(r))
    assert r["all_finite"], r
    return out


def check_tiny(args, device: str, work: Path) -> None:
    tok, tr, va = tiny_corpus(args, work)
    cfg = {k: tiny_model_cfg(k, tok, tr, va, args.tiny_batch, device) for k in ("tdt", "rnnt")}
    out: dict = {"device": device, "tdt_model": inspect_tdt_model(cfg["tdt"], device, args.dry_run)}
    accel = "gpu" if device == "cuda" else "cpu"
    kind = "tdt" if device == "cuda" else "rnnt"  # the TDT loss is CUDA-only; dry run trains RNNT, same code path
    for precision, steps in (("bf16-mixed", args.tdt_steps), (32, args.fp32_steps)):
        log(f"tiny {kind.upper()} training: {steps} steps, precision={precision}, {accel}")
        r = lightning_fit(cfg[kind], accel, precision, steps, val_batches=(1 if args.dry_run else 1.0))
        r["kind"] = kind
        out[f"train_{precision}"] = r
        print(f"  -> {json.dumps(r)}")
        assert r["losses"], f"no training step ran at precision {precision}"
        assert r["all_finite"], f"non-finite {kind} loss at precision {precision}: {r['losses']}"
    if args.dry_run:
        out.update(dry_run_loops(cfg["rnnt"]))
    SUMMARY["tiny"] = out
    SUMMARY["tdt_losses"] = {"bf16-mixed": out["train_bf16-mixed"]["losses"], "fp32": out["train_32"]["losses"]}
