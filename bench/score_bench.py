"""Scoring throughput: the whole scoring run vs bare rapidfuzz Levenshtein, measured in one run.

    python bench/score_bench.py [--rows 100000] [--repeats 3]

Builds a synthetic 100k-row clinical manifest + hypotheses (no audio needed to score), then times:
  * scoring  = normalise ref/hyp/term, WER/CER/KER/SER per row, aggregates, four KER breakdowns with
               bootstrap CIs, and writing per_sample.jsonl, results.csv, metrics.json and the leaderboard;
  * baseline = bare rapidfuzz Levenshtein over the same (already normalised) pairs: char-level, and
               word-level (token lists), i.e. the edit-distance work CER and WER need, nothing else.
Machines here are noisy, so each is the best of --repeats runs, and only ratios from one run are reported.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from asr_flywheel.config import FlywheelConfig
from asr_flywheel.manifest import Manifest
from asr_flywheel.normalize import normalize_many
from asr_flywheel.scoring import score_manifest, write_score_outputs

TERMS = {
    "drug": ["cefazolin", "metoprolol tartrate", "vancomycin", "enoxaparin", "piperacillin-tazobactam", "amiodarone"],
    "procedure": ["laparoscopic cholecystectomy", "thoracentesis", "intubation", "colonoscopy"],
    "anatomy": ["left ventricle", "pancreas", "femoral artery", "duodenum"],
    "condition": ["atrial fibrillation", "sepsis", "pneumothorax"],
    "lab": ["troponin", "lactate", "hemoglobin a1c"],
    "role": ["anesthesiologist", "charge nurse"],
}
FILLER = [
    "the",
    "patient",
    "was",
    "given",
    "before",
    "the",
    "procedure",
    "and",
    "we",
    "will",
    "monitor",
    "closely",
    "overnight",
    "please",
    "note",
    "that",
    "history",
    "of",
    "follow",
    "up",
    "in",
    "two",
    "weeks",
    "with",
    "repeat",
    "imaging",
]
SOURCES = ["override", "merriam-webster", "magpie_g2p", "lexicon", "g2p"]
NOISE = ["clean", "snr_15db", "snr_5db"]


def synth_rows(n: int, seed: int = 0) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    rows, hyps = [], []
    cats = list(TERMS)
    for i in range(n):
        cat = rng.choice(cats)
        term = rng.choice(TERMS[cat])
        words = rng.choices(FILLER, k=rng.randint(5, 14))
        pos = rng.randint(0, len(words))
        text = " ".join([*words[:pos], term.capitalize() if pos == 0 else term, *words[pos:]]) + "."
        rows.append(
            {
                "audio_filepath": f"/data/audio/{i:06d}.wav",
                "text": text,
                "duration": 4.2,
                "term": term,
                "entity_category": cat,
                "ipa_source": rng.choice(SOURCES),
                "noise_level": rng.choice(NOISE),
                "voice_id": f"v{rng.randint(1, 8)}",
                "context_type": "dictation",
            }
        )
        hyp = text.lower().rstrip(".").split()
        r = rng.random()
        if r < 0.35:  # mangle the term (split / misspell)
            t = " ".join(hyp).replace(term, term[: len(term) // 2] + " " + term[len(term) // 2 :], 1)
            hyp = t.split()
        if rng.random() < 0.4:  # a random substitution / deletion / insertion elsewhere
            k = rng.randrange(len(hyp))
            op = rng.random()
            if op < 0.4:
                hyp[k] = rng.choice(FILLER)
            elif op < 0.7:
                del hyp[k]
            else:
                hyp.insert(k, rng.choice(FILLER))
        hyps.append(" ".join(hyp))
    return rows, hyps


def best_of(repeats: int, fn) -> float:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    rows, hyps = synth_rows(args.rows)
    manifest = Manifest(
        path=Path("/data/bench_manifest.jsonl"),
        rows=rows,
        lines=list(range(1, len(rows) + 1)),
        audio_paths=[r["audio_filepath"] for r in rows],
    )
    cfg = FlywheelConfig()
    refs_n = normalize_many([r["text"] for r in rows])
    hyps_n = normalize_many(hyps)
    ref_tok = [r.split() for r in refs_n]
    hyp_tok = [h.split() for h in hyps_n]
    dist = Levenshtein.distance

    def char_only():
        [dist(r, h) for r, h in zip(refs_n, hyps_n, strict=True)]

    def word_only():
        [dist(r, h) for r, h in zip(ref_tok, hyp_tok, strict=True)]

    with tempfile.TemporaryDirectory() as tmp:

        def scoring():
            report = score_manifest(manifest, hyps, config=cfg, model_name="bench", cycle=1)
            write_score_outputs(report, tmp)

        scoring()  # warm-up: builds the punctuation table once, as any long-lived process would
        t_score = best_of(args.repeats, scoring)
    t_char = best_of(args.repeats, char_only)
    t_word = best_of(args.repeats, word_only)
    t_both = t_char + t_word
    print(f"rows: {args.rows}  (best of {args.repeats})")
    print(f"whole scoring run (normalise, 4 metrics, breakdowns + CIs, 4 files): {t_score:.3f} s")
    print(f"bare rapidfuzz Levenshtein, char-level pairs:                 {t_char:.3f} s")
    print(f"bare rapidfuzz Levenshtein, word-level pairs:                 {t_word:.3f} s")
    print(f"bare rapidfuzz Levenshtein, char + word (what CER + WER need): {t_both:.3f} s")
    print(f"ratio scoring / (char + word edit distance): {t_score / t_both:.2f}x   (target <= 4x)")
    print(f"ratio scoring / char-only edit distance:     {t_score / t_char:.2f}x")


if __name__ == "__main__":
    main()
