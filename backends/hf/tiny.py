"""A tiny MedASR-architecture model (LasrForCTC) built from config, for offline demos and tests.

Same classes, processor and save/load path as `google/medasr` (Conformer encoder, CTC head, 128 log-mel
features, SentencePiece-style tokenizer with <pad>=blank, </s>, <unk>), but a character vocabulary and a
64-wide, 2-layer encoder so it trains in seconds on a CPU. Seeded: the same seed gives the same weights.
"""

from __future__ import annotations

from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.normalize import normalize_many

SPECIALS = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("\u2581", -1.0)]


def build_tiny_medasr(
    texts: list[str], out_dir: str | Path, *, hidden: int = 64, layers: int = 2, seed: int = 0
) -> Path:
    import torch
    from transformers import (
        LasrCTCConfig,
        LasrEncoderConfig,
        LasrFeatureExtractor,
        LasrForCTC,
        LasrProcessor,
        LasrTokenizer,
    )

    chars = sorted({c for t in normalize_many(texts) for c in t if c != " "})
    # extra_ids=0: the default appends 100 <extra_id_N> tokens after a custom vocabulary.
    tokenizer = LasrTokenizer(vocab=SPECIALS + [(c, -2.0) for c in chars], extra_ids=0)
    encoder = LasrEncoderConfig(
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=4,
        intermediate_size=hidden * 2,
        conv_kernel_size=15,
        subsampling_conv_channels=hidden,
        num_mel_bins=128,
        dropout=0.0,
        layerdrop=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
    )
    config = LasrCTCConfig(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        ctc_loss_reduction="mean",
        ctc_zero_infinity=True,
        encoder_config=encoder.to_dict(),
    )
    processor = LasrProcessor(
        feature_extractor=LasrFeatureExtractor(feature_size=128, sampling_rate=16000), tokenizer=tokenizer
    )
    torch.manual_seed(seed)
    with fio.atomic_dir(out_dir) as tmp:
        LasrForCTC(config).save_pretrained(str(tmp))
        processor.save_pretrained(str(tmp))
    return Path(out_dir)
