"""Batched vs one-file-at-a-time transcription, same model and audio, measured in one run.

    python bench/transcribe_bench.py [--backend nemo|hf|both] [--clips 64] [--batch-size 8] [--repeats 3]

Builds tiny models from config (no downloads), synthesises clinical sentences with espeak-ng, then times the
flywheel's own transcription path (the backend's LoadedModel.transcribe, exactly what `flywheel eval` and the
cycle use) two ways: one call over all clips with batching (batch size 8 by default, the per-sample sweet spot
measured on 2 vCPUs and `[cycle] batch_size`'s default; pass --batch-size 32 or more on a GPU), and one call
per clip with batch size 1. Runs are
interleaved and the best of --repeats is kept, because this machine is shared and noisy. Prints the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
from helpers import dataset_rows


def make_audio(root: Path, n: int) -> tuple[list[str], list[str]]:
    rows = dataset_rows(3)
    tts = EspeakSynthesizer()
    paths, texts = [], []
    for i in range(n):
        text, _, _, voice = rows[i % len(rows)]
        p = root / f"clip{i:03d}.wav"
        tts.synthesize(text, p, voice=voice)
        paths.append(str(p))
        texts.append(text)
    return paths, texts


def build(backend: str, texts: list[str], root: Path) -> str:
    if backend == "nemo":
        from asr_flywheel.backends.nemo.tiny import build_tiny_model

        return str(build_tiny_model("ctc", texts, root / "tiny_ctc.nemo"))
    from asr_flywheel.backends.hf.tiny import build_tiny_medasr

    return str(build_tiny_medasr(texts, root / "tiny_medasr"))


def bench(backend: str, paths: list[str], texts: list[str], root: Path, batch_size: int, repeats: int) -> float:
    from asr_flywheel.flows.steps import load_model

    model = load_model(build(backend, texts, root))
    model.transcribe(paths[:4], batch_size=4)  # warm-up: first call pays one-off initialisation
    batched, single = [], []
    for _ in range(repeats):
        t = time.perf_counter()
        a = model.transcribe(paths, batch_size=batch_size)
        batched.append(time.perf_counter() - t)
        t = time.perf_counter()
        b = [model.transcribe([p], batch_size=1)[0] for p in paths]
        single.append(time.perf_counter() - t)
    agree = sum(x == y for x, y in zip(a, b, strict=True))
    ratio = min(single) / min(batched)
    print(
        f"[{backend}] {len(paths)} clips: batched (batch {batch_size}) {min(batched):.2f} s, "
        f"one at a time {min(single):.2f} s  → ratio {ratio:.2f}x   (target >= 3x; best of {repeats}; "
        f"identical transcripts {agree}/{len(paths)})"
    )
    return ratio


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--backend", choices=["nemo", "hf", "both"], default="both")
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--batch-size", type=int, default=8, help="8 was the per-sample sweet spot on 2 vCPUs")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        paths, texts = make_audio(root, args.clips)
        for backend in ["nemo", "hf"] if args.backend == "both" else [args.backend]:
            bench(backend, paths, texts, root, args.batch_size, args.repeats)


if __name__ == "__main__":
    main()
