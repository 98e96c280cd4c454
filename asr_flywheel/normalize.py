"""Text normalisation applied to reference and hypothesis before every metric (docs/design.md#metrics).

1. strip model artefacts (`</s>`, `<s>`, `<pad>`, `<epsilon>`), 2. Unicode NFKD, then drop combining marks
(category Mn), so "Café-au-lait" matches "cafe-au-lait" and "Sjögren's" becomes "sjogrens", 3. lowercase,
4. delete punctuation (every Unicode `P*` character) except the ASCII hyphen, 5. collapse whitespace.

Punctuation is deleted, not replaced by a space (as jiwer's RemovePunctuation does), so "patient's" and
"patients" compare equal and "cefazolin." still matches the term "cefazolin". The hyphen is kept, so a
hyphenated term ("beta-blocker") is only matched by a hyphenated hypothesis.

Speed: `normalize_many` works on newline-joined blobs. Pure-ASCII rows (nearly all clinical English)
take a bytes path (`bytes.translate` deletes punctuation at memory speed; NFKD is the identity on ASCII);
other rows take the Unicode path. Tests assert both paths agree on ASCII input.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from functools import cache

ARTEFACT_TOKENS = ("</s>", "<s>", "<pad>", "<epsilon>")
_ARTEFACTS = re.compile("|".join(re.escape(t) for t in ARTEFACT_TOKENS))
_ARTEFACTS_B = re.compile("|".join(re.escape(t) for t in ARTEFACT_TOKENS).encode())
#: Unicode assigns punctuation only in planes 0 and 1; a test checks this for the running Python.
PUNCTUATION_SCAN_LIMIT = 0x20000
#: Combining marks (Mn) live in planes 0 and 1 plus plane 14's variation selectors; a test checks this too.
DELETE_SCAN_RANGES = (range(0, PUNCTUATION_SCAN_LIMIT), range(0xE0000, 0xE1000))
_HYPHEN = 0x2D
# ASCII whitespace other than "\n" (the blob's row separator) → space; the set str.split() splits on.
_ASCII_SPACES = b"\t\r\x0b\x0c\x1c\x1d\x1e\x1f"
_ASCII_SPACE_TABLE = bytes.maketrans(_ASCII_SPACES, b" " * len(_ASCII_SPACES))
_ASCII_PUNCT = bytes(c for c in range(128) if c != _HYPHEN and unicodedata.category(chr(c))[0] == "P")
_UNICODE_SPACES = re.compile(r"[^\S\n]+")


def _char_class(codepoints: list[int]) -> str:
    ranges: list[tuple[int, int]] = []
    for cp in codepoints:
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return "".join(re.escape(chr(a)) if a == b else f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b in ranges)


def _deleted(cp: int) -> bool:
    """Deleted by normalisation: punctuation other than the ASCII hyphen, and combining marks (accents)."""
    cat = unicodedata.category(chr(cp))
    return cat == "Mn" or (cat[0] == "P" and cp != _HYPHEN)


@cache
def _punctuation_patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """(BMP pattern, supplementary-plane pattern) deleting punctuation and combining marks in one pass.

    Kept apart: `re` matches a BMP-only class ~4× faster."""
    cps = [cp for rng in DELETE_SCAN_RANGES for cp in rng if _deleted(cp)]
    bmp = [c for c in cps if c < 0x10000]
    smp = [c for c in cps if c >= 0x10000]
    return re.compile(f"[{_char_class(bmp)}]+"), re.compile(f"[{_char_class(smp)}]+")


def _finish(blob: str) -> list[str]:
    """Blob with single spaces → rows without leading/trailing spaces."""
    return blob.replace(" \n", "\n").replace("\n ", "\n").strip(" ").split("\n")


def _ascii_rows(blob: str) -> list[str]:
    b = blob.encode("ascii")
    if b"<" in b:
        b = _ARTEFACTS_B.sub(b" ", b)
    b = b.lower().translate(_ASCII_SPACE_TABLE, _ASCII_PUNCT)
    while b"  " in b:
        b = b.replace(b"  ", b" ")
    return _finish(b.decode("ascii"))


def _unicode_rows(blob: str) -> list[str]:
    blob = _ARTEFACTS.sub(" ", blob)
    blob = unicodedata.normalize("NFKD", blob).lower()
    # Lowercasing can yield characters with compatibility decompositions (e.g. from U+0130); a second NFKD
    # keeps the result a fixed point, so normalize(normalize(x)) == normalize(x).
    blob = unicodedata.normalize("NFKD", blob)
    bmp, smp = _punctuation_patterns()
    blob = bmp.sub("", blob)
    if max(blob, default="\0") > "\uffff":
        blob = smp.sub("", blob)
    return _finish(_UNICODE_SPACES.sub(" ", blob))


def normalize_many(texts: list[str]) -> list[str]:
    """Normalise many strings (see module docstring); output[i] corresponds to texts[i]."""
    if not texts:
        return []
    # A newline is whitespace, so folding it to a space changes nothing, and frees "\n" as the separator.
    texts = [t.replace("\n", " ") if "\n" in t else t for t in texts]
    blob = "\n".join(texts)
    if blob.isascii():
        return _ascii_rows(blob)
    out: list[str] = [""] * len(texts)
    ascii_idx = [i for i, t in enumerate(texts) if t.isascii()]
    other_idx = [i for i, t in enumerate(texts) if not t.isascii()]
    for idx, fn in ((ascii_idx, _ascii_rows), (other_idx, _unicode_rows)):
        if idx:
            for i, s in zip(idx, fn("\n".join(texts[i] for i in idx)), strict=True):
                out[i] = s
    return out


def normalize(text: str) -> str:
    """Normalise one string (see module docstring)."""
    return normalize_many([text])[0]


def _max_punctuation_codepoint() -> int:
    """Highest punctuation code point in this Python's Unicode database (for the test guarding the scan)."""
    return max(cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] == "P")


def _deleted_outside_scan() -> list[int]:
    """Code points normalisation must delete that the pattern scan misses (for the test guarding the scan)."""
    scanned = DELETE_SCAN_RANGES
    return [cp for cp in range(sys.maxunicode + 1) if _deleted(cp) and not any(cp in r for r in scanned)]
