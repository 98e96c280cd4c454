"""Synthetic text, tokenizers and audio for the GPU checks (no downloads, no TTS needed on the GPU box)."""

from __future__ import annotations

import json
import random
import wave
from pathlib import Path

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
