"""Regenerate the bundled example manifest and baseline hypotheses (deterministic).

    python examples/clinical/make_example.py

Sentences come from templates per context type; the "baseline" hypotheses imitate a general-purpose ASR
model (drug names split or misheard more often than other categories). Audio is not committed: the demo
synthesises it with the espeak-ng synthesizer plugin the first time it runs.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).parent
TEMPLATES = {
    "dictation": ["the patient was started on {t} this morning", "plan is to continue {t} and reassess"],
    "handoff": ["overnight we held {t} pending labs", "please check on {t} before rounds"],
    "chart_note": ["assessment notable for {t} today", "{t} discussed with the family"],
    "history": ["past history includes {t}", "no prior history of {t}"],
}
MISHEAR_RATE = {"drug": 0.6, "procedure": 0.35, "anatomy": 0.2, "condition": 0.25, "lab": 0.3, "role": 0.15}
SOURCES = ["override", "merriam-webster", "magpie_g2p"]


def mishear(term: str, rng: random.Random) -> str:
    words = term.split()
    w = max(range(len(words)), key=lambda i: len(words[i]))
    word = words[w]
    cut = len(word) // 2
    words[w] = rng.choice([f"{word[:cut]} {word[cut:]}", word[:-2] + "en", word[1:]])
    return " ".join(words)


def main() -> None:
    rng = random.Random(7)
    with open(HERE / "terms.csv", newline="") as fh:
        terms = list(csv.DictReader(fh))
    rows, hyps = [], []
    for t in terms:
        for k in range(5):
            ctx = list(TEMPLATES)[k % 4]
            text = rng.choice(TEMPLATES[ctx]).format(t=t["term"])
            text = text[0].upper() + text[1:] + "."
            audio = f"audio/{t['term'].replace(' ', '_')}_{k}.wav"
            source = SOURCES[(k + len(rows)) % 3]
            rows.append(
                {
                    "audio_filepath": audio,
                    "text": text,
                    "duration": None,
                    "term": t["term"],
                    "entity_category": t["entity_category"],
                    "ipa_source": source,
                    "voice_id": "en-us",
                    "noise_level": "clean",
                    "context_type": ctx,
                }
            )
            hyp = text.lower().rstrip(".")
            if rng.random() < MISHEAR_RATE[t["entity_category"]]:
                hyp = hyp.replace(t["term"], mishear(t["term"], rng))
            hyps.append({"audio_filepath": audio, "hyp": hyp})
    (HERE / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (HERE / "baseline_hyps.jsonl").write_text("".join(json.dumps(h) + "\n" for h in hyps))
    print(f"wrote {len(rows)} rows")


if __name__ == "__main__":
    main()
