"""Scoring throughput: the whole scoring run vs bare rapidfuzz Levenshtein, measured in one run.

    python bench/score_bench.py [--rows 100000] [--repeats 3]

Builds a synthetic 100k-row clinical manifest + hypotheses (no audio needed to score), then times:
  * the whole scoring run: normalise ref/hyp/term, WER/CER/KER/SER per row, aggregates, four KER breakdowns
    with bootstrap CIs, and writing per_sample.jsonl, results.csv, metrics.json and the leaderboard (also
    split into its compute and file-writing parts);
  * bare rapidfuzz Levenshtein over the same normalised pairs: char-level, word-level from the string pairs
    (tokenising included: that is what a word-level distance of a string pair costs), and word-level on
    pre-tokenised lists, so the reader can pick the baseline; the target is stated against char + word.
Machines here are noisy, so each time is the best of --repeats runs, and only ratios from one run are reported.
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from pathlib import Path

from rapidfuzz.distance import Levenshtein

from asr_flywheel.config import FlywheelConfig
from asr_flywheel.io import jsonl_bytes
from asr_flywheel.manifest import Manifest
from asr_flywheel.normalize import normalize_many
from asr_flywheel.score_files import write_score_outputs
from asr_flywheel.scoring import score_manifest
from asr_flywheel.validation import validate_manifest

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

    def char_level():
        [dist(r, h) for r, h in zip(refs_n, hyps_n, strict=True)]

    def word_level_strings():  # WER's edit distance from the normalised string pairs: tokenise, then compare
        [dist(r.split(), h.split()) for r, h in zip(refs_n, hyps_n, strict=True)]

    def word_level_pretokenised():
        [dist(r, h) for r, h in zip(ref_tok, hyp_tok, strict=True)]

    with tempfile.TemporaryDirectory() as tmp:
        reports = []

        def compute():
            reports.append(score_manifest(manifest, hyps, config=cfg, model_name="bench", cycle=1))

        def files():
            write_score_outputs(reports[-1], tmp)

        def whole():
            compute()
            files()

        whole()  # warm-up: builds the punctuation tables once, as any long-lived process would
        t_whole = best_of(args.repeats, whole)
        t_compute = best_of(args.repeats, compute)
        t_files = best_of(args.repeats, files)
        sizes = {p.name: p.stat().st_size for p in Path(tmp).iterdir()}
    t_char = best_of(args.repeats, char_level)
    t_word = best_of(args.repeats, word_level_strings)
    t_word_tok = best_of(args.repeats, word_level_pretokenised)
    base = t_char + t_word
    print(f"rows: {args.rows}   (each time is the best of {args.repeats}; all measured in this run)")
    print(f"whole scoring run: normalise, WER/CER/KER/SER, 4 breakdowns + CIs, 4 files   {t_whole:6.3f} s")
    print(f"  of which compute (normalise, metrics, breakdowns, bootstrap CIs)          {t_compute:6.3f} s")
    print(f"  of which writing the files ({', '.join(f'{k} {v / 1e6:.1f} MB' for k, v in sorted(sizes.items()))})")
    print(f"                                                                            {t_files:6.3f} s")
    print("bare rapidfuzz Levenshtein over the same normalised pairs:")
    print(f"  char-level (CER's distance)                                               {t_char:6.3f} s")
    print(f"  word-level from the string pairs, tokenising included (WER's distance)    {t_word:6.3f} s")
    print(f"  word-level on pre-tokenised lists (tokenising not timed)                  {t_word_tok:6.3f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "manifest.jsonl"
        path.write_bytes(jsonl_bytes(rows))
        t_validate = best_of(args.repeats, lambda: validate_manifest(path, cfg, check_audio=False))
    print(f"validating the {args.rows}-row manifest file (every check but the audio headers) {t_validate:6.3f} s")
    print(f"ratio whole run / (char + word from strings) = {t_whole / base:5.2f}x   (target <= 4x)")
    print(f"ratio compute only / (char + word from strings) = {t_compute / base:5.2f}x")
    print(
        f"ratio whole run / (char + pre-tokenised word) = {t_whole / (t_char + t_word_tok):5.2f}x;  "
        f"whole run / char only = {t_whole / t_char:5.2f}x"
    )


if __name__ == "__main__":
    main()
