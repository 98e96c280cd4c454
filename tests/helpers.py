"""Helpers shared by tests (importable because pytest puts tests/ on sys.path)."""

from __future__ import annotations

import json
from pathlib import Path

CLINICAL_SENTENCES = [
    ("give cefazolin two grams before the incision", "cefazolin", "drug"),
    ("start metoprolol tartrate twenty five milligrams", "metoprolol tartrate", "drug"),
    ("hold the vancomycin dose tonight", "vancomycin", "drug"),
    ("the patient is scheduled for laparoscopic cholecystectomy", "laparoscopic cholecystectomy", "procedure"),
    ("there is mild dilation of the left ventricle", "left ventricle", "anatomy"),
    ("history of atrial fibrillation", "atrial fibrillation", "condition"),
    ("repeat troponin in six hours", "troponin", "lab"),
    ("page the anesthesiologist now", "anesthesiologist", "role"),
]


def write_manifest(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


#: Extra sentences so tiny datasets have >= 5 rows in the priority category and some variety.
EXTRA_SENTENCES = [
    ("give cefazolin before surgery", "cefazolin", "drug"),
    ("restart metoprolol tartrate tomorrow", "metoprolol tartrate", "drug"),
    ("vancomycin trough is pending", "vancomycin", "drug"),
    ("the left ventricle looks normal", "left ventricle", "anatomy"),
    ("troponin is rising", "troponin", "lab"),
    ("schedule a laparoscopic cholecystectomy", "laparoscopic cholecystectomy", "procedure"),
    ("new onset atrial fibrillation", "atrial fibrillation", "condition"),
    ("call the anesthesiologist", "anesthesiologist", "role"),
]


def dataset_rows(n_voices: int = 2) -> list[tuple[str, str, str, str]]:
    """(text, term, category, voice) rows: every sentence in every voice (16 sentences x voices)."""
    voices = ["en-us", "en-gb", "en-us+f3"][:n_voices]
    return [(t, term, cat, v) for v in voices for (t, term, cat) in CLINICAL_SENTENCES + EXTRA_SENTENCES]
