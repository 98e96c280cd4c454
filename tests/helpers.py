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
