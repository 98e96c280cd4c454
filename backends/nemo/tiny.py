"""Tiny NeMo models built from config, for offline demos and tests (no hub downloads possible here).

The shapes follow NeMo's FastConformer configs, shrunk (d_model 96, 2 layers): the same model classes, the
same save/restore/transcribe/fine-tune code paths as Parakeet, in seconds on a CPU. `kind` is "ctc"
(EncDecCTCModelBPE, learns fastest on CPU), "rnnt" (EncDecRNNTBPEModel, numba RNNT loss runs on CPU) or
"tdt" (the Parakeet-TDT decoder; its loss trains only on CUDA).

Builds are seeded (same seed, texts and shapes ⇒ same weights and tokenizer), so demos and tests repeat.
`build_tiny_model`'s tokenizer always covers `ALPHABET` (letters, digits, '-', apostrophe) besides the texts:
clinical terms such as `a1c` or `piperacillin-tazobactam` must be spellable even by a base trained on general
English. Subsampling 4 (40 ms frames) suits near-character vocabularies; 8 (Parakeet's) gives CTC too few
frames for them.
"""

from __future__ import annotations

import random
import tempfile
from pathlib import Path

TDT_DURATIONS = [0, 1, 2, 3, 4]
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789-'"


def train_tokenizer(texts: list[str], out_dir: Path, vocab_size: int = 128, *, alphabet: str = "") -> Path:
    """SentencePiece unigram model + the vocab.txt NeMo's `tokenizer.dir` also expects. Every character of
    `alphabet` gets a piece even when the texts lack it."""
    import sentencepiece as spm

    out_dir.mkdir(parents=True, exist_ok=True)
    corpus = out_dir / "corpus.txt"
    corpus.write_text("\n".join([*texts, *([" ".join(alphabet)] if alphabet else [])]) + "\n", encoding="utf-8")
    spm.SentencePieceTrainer.train(
        input=str(corpus),
        model_prefix=str(out_dir / "tokenizer"),
        vocab_size=vocab_size,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        bos_id=-1,
        eos_id=-1,
        unk_id=0,
        minloglevel=2,
    )
    pieces = []
    for line in (out_dir / "tokenizer.vocab").read_text(encoding="utf-8").splitlines():
        p = line.split("\t")[0]
        if p == "<unk>" or p == "\u2581":
            pieces.append(p)
        elif p.startswith("\u2581"):
            pieces.append(p[1:])
        else:
            pieces.append(f"##{p}")
    (out_dir / "vocab.txt").write_text("\n".join(pieces) + "\n", encoding="utf-8")
    return out_dir


def fastconformer_config(
    kind: str,
    tokenizer_dir: Path,
    *,
    d_model: int = 96,
    n_layers: int = 2,
    n_heads: int = 4,
    features: int = 80,
    subsampling_channels: int | None = None,
    pred_hidden: int | None = None,
    pred_layers: int = 1,
    joint_hidden: int | None = None,
    subsampling_factor: int = 8,
) -> dict:
    """A FastConformer model config (NeMo's fastconformer shapes). Defaults are tiny; see `parakeet_tdt_0_6b_v2`."""
    if kind not in ("ctc", "rnnt", "tdt"):
        raise ValueError(f"kind must be ctc, rnnt or tdt, not {kind!r}")
    pred, joint = pred_hidden or d_model, joint_hidden or d_model
    cfg: dict = {
        "sample_rate": 16000,
        "log_prediction": False,
        "compute_eval_loss": False,
        "skip_nan_grad": False,
        "model_defaults": {"enc_hidden": d_model, "pred_hidden": pred, "joint_hidden": joint},
        "tokenizer": {"dir": str(tokenizer_dir), "type": "bpe"},
        # Placeholders: filled by the trainer; transcribe() of BPE models reads validation_ds options.
        "train_ds": {"manifest_filepath": None, "sample_rate": 16000, "batch_size": 4, "shuffle": True},
        "validation_ds": {
            "manifest_filepath": None,
            "sample_rate": 16000,
            "batch_size": 4,
            "shuffle": False,
            "use_start_end_token": False,
        },
        "preprocessor": {
            "_target_": "nemo.collections.asr.modules.AudioToMelSpectrogramPreprocessor",
            "sample_rate": 16000,
            "normalize": "per_feature",
            "window_size": 0.025,
            "window_stride": 0.01,
            "window": "hann",
            "features": features,
            "n_fft": 512,
            "frame_splicing": 1,
            "dither": 1e-5,
            "pad_to": 0,
        },
        "spec_augment": {
            "_target_": "nemo.collections.asr.modules.SpectrogramAugmentation",
            "freq_masks": 2,
            "time_masks": 2,
            "freq_width": 15,
            "time_width": 0.05,
        },
        "encoder": {
            "_target_": "nemo.collections.asr.modules.ConformerEncoder",
            "feat_in": features,
            "feat_out": -1,
            "n_layers": n_layers,
            "d_model": d_model,
            "subsampling": "dw_striding",
            "subsampling_factor": subsampling_factor,
            "subsampling_conv_channels": subsampling_channels or d_model,
            "causal_downsampling": False,
            "ff_expansion_factor": 4,
            "self_attention_model": "rel_pos",
            "n_heads": n_heads,
            "att_context_size": [-1, -1],
            "xscaling": True,
            "untie_biases": True,
            "pos_emb_max_len": 5000,
            "conv_kernel_size": 9,
            "conv_norm_type": "batch_norm",
            "dropout": 0.1,
            "dropout_pre_encoder": 0.1,
            "dropout_emb": 0.0,
            "dropout_att": 0.1,
        },
        "optim": {
            "name": "adamw",
            "lr": 3e-4,
            "betas": [0.9, 0.98],
            "weight_decay": 1e-3,
            "sched": {"name": "CosineAnnealing", "warmup_steps": 5, "min_lr": 1e-6},
        },
    }
    if kind == "ctc":
        cfg["ctc_reduction"] = "mean_volume"
        cfg["decoder"] = {
            "_target_": "nemo.collections.asr.modules.ConvASRDecoder",
            "feat_in": None,
            "num_classes": -1,
            "vocabulary": [],
        }
        cfg["decoding"] = {"strategy": "greedy_batch"}
        return cfg
    cfg["rnnt_reduction"] = "mean_volume"
    cfg["decoder"] = {
        "_target_": "nemo.collections.asr.modules.RNNTDecoder",
        "normalization_mode": None,
        "random_state_sampling": False,
        "blank_as_pad": True,
        "prednet": {"pred_hidden": pred, "pred_rnn_layers": pred_layers, "t_max": None, "dropout": 0.2},
    }
    cfg["joint"] = {
        "_target_": "nemo.collections.asr.modules.RNNTJoint",
        "log_softmax": None,
        "preserve_memory": False,
        "fuse_loss_wer": True,
        "fused_batch_size": 4,
        "jointnet": {"joint_hidden": joint, "activation": "relu", "dropout": 0.2},
    }
    cfg["decoding"] = {"strategy": "greedy_batch", "greedy": {"max_symbols": 10}}
    cfg["loss"] = {"loss_name": "default", "warprnnt_numba_kwargs": {"fastemit_lambda": 0.0, "clamp": -1.0}}
    if kind == "tdt":
        cfg["model_defaults"].update(tdt_durations=TDT_DURATIONS, num_tdt_durations=len(TDT_DURATIONS))
        cfg["joint"]["num_extra_outputs"] = len(TDT_DURATIONS)
        cfg["decoding"].update(model_type="tdt", durations=TDT_DURATIONS)
        cfg["loss"] = {
            "loss_name": "tdt",
            "tdt_kwargs": {
                "fastemit_lambda": 0.0,
                "clamp": -1.0,
                "durations": TDT_DURATIONS,
                "sigma": 0.02,
                "omega": 0.1,
            },
        }
    return cfg


def tiny_config(
    kind: str,
    tokenizer_dir: Path,
    d_model: int = 96,
    n_layers: int = 2,
    features: int = 80,
    subsampling_factor: int = 8,
) -> dict:
    return fastconformer_config(
        kind,
        tokenizer_dir,
        d_model=d_model,
        n_layers=n_layers,
        features=features,
        subsampling_factor=subsampling_factor,
    )


def seed_all(seed: int) -> None:
    """Python, NumPy and torch generators: what building a NeMo model from config draws from."""
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def parakeet_tdt_0_6b_v2(tokenizer_dir: Path, kind: str = "tdt") -> dict:
    """The nvidia/parakeet-tdt-0.6b-v2 architecture (~618 M parameters with a 1024-piece tokenizer), for random-
    weight throughput checks: FastConformer 24 x 1024, 8 heads, 256 subsampling channels, 128 mels, 2-layer LSTM
    prediction net of 640, joint 640, TDT durations 0-4. `kind="rnnt"` gives the same network with the RNNT loss."""
    return fastconformer_config(
        kind,
        tokenizer_dir,
        d_model=1024,
        n_layers=24,
        n_heads=8,
        features=128,
        subsampling_channels=256,
        pred_hidden=640,
        pred_layers=2,
        joint_hidden=640,
    )


def build_tiny_model(
    kind: str,
    texts: list[str],
    out_path: str | Path,
    *,
    vocab_size: int = 128,
    d_model: int = 96,
    n_layers: int = 2,
    subsampling_factor: int = 8,
    seed: int = 0,
) -> Path:
    """Build a randomly initialised (seeded) tiny model whose tokenizer covers `texts` and `ALPHABET`, and save
    it as .nemo."""
    from omegaconf import OmegaConf

    from asr_flywheel.backends.nemo._runtime import quiet_nemo

    quiet_nemo()
    from nemo.collections.asr.models import EncDecCTCModelBPE, EncDecRNNTBPEModel

    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        tok = train_tokenizer(texts, Path(tmp) / "tokenizer", vocab_size, alphabet=ALPHABET)
        cls = EncDecCTCModelBPE if kind == "ctc" else EncDecRNNTBPEModel
        cfg = tiny_config(kind, tok, d_model, n_layers, subsampling_factor=subsampling_factor)
        seed_all(seed)
        model = cls(cfg=OmegaConf.create(cfg), trainer=None)
        tmp_model = out.with_name(f".{out.name}.tmp")
        model.save_to(str(tmp_model))  # tokenizer files are packed into the .nemo
        tmp_model.replace(out)
    return out
