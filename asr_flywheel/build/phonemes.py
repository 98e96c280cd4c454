"""Pronunciations (verified overrides, lexicon entries) and the IPA → espeak-ng mnemonic conversion.

Overrides are usually written in IPA (what clinicians' references print), but espeak-ng only reads its own
ASCII mnemonics inside `[[...]]`. The table covers General American and RP English phonemes; a symbol it does
not know is an error for that override's line, never silently dropped or approximated.
"""

from __future__ import annotations

from dataclasses import dataclass

ALPHABETS = ("ipa", "espeak", "arpabet")


@dataclass(frozen=True)
class Pronunciation:
    """How to say one term: `phonemes` in `alphabet` ("ipa", "arpabet" or "espeak" mnemonics), and where it came
    from."""

    phrase: str
    phonemes: str
    alphabet: str = "ipa"
    #: The pronunciation tier, recorded in the manifest's `ipa_source` ("override" or "lexicon").
    source: str = "override"


# Longest symbols first at lookup time (diphthongs, affricates, long vowels before their parts).
_IPA_TO_ESPEAK = {
    # consonants
    "tʃ": "tS",
    "t͡ʃ": "tS",
    "dʒ": "dZ",
    "d͡ʒ": "dZ",
    "p": "p",
    "b": "b",
    "t": "t",
    "d": "d",
    "k": "k",
    "g": "g",
    "ɡ": "g",
    "f": "f",
    "v": "v",
    "θ": "T",
    "ð": "D",
    "s": "s",
    "z": "z",
    "ʃ": "S",
    "ʒ": "Z",
    "h": "h",
    "m": "m",
    "n": "n",
    "ŋ": "N",
    "l": "l",
    "ɫ": "l",
    "r": "r",
    "ɹ": "r",
    "ɾ": "t",
    "w": "w",
    "j": "j",
    "ʔ": "?",
    "x": "x",
    # diphthongs and r-coloured vowels
    "eɪ": "eI",
    "aɪ": "aI",
    "ɔɪ": "OI",
    "aʊ": "aU",
    "oʊ": "oU",
    "əʊ": "@U",
    "ɪə": "i@",
    "ɛə": "e@",
    "ʊə": "U@",
    "ɑɹ": "A@",
    "ɑr": "A@",
    "ɔɹ": "o@",
    "ɔr": "o@",
    "ɪɹ": "i@3",
    "ɛɹ": "e@",
    "ʊɹ": "U@",
    # vowels
    "iː": "i:",
    "i": "i",
    "ɪ": "I",
    "ᵻ": "I2",
    "e": "e",
    "ɛ": "E",
    "æ": "a",
    "a": "a",
    "ɐ": "a#",
    "ɑː": "A:",
    "ɑ": "A:",
    "ɒ": "0",
    "ɔː": "O:",
    "ɔ": "O:",
    "o": "o",
    "oː": "o:",
    "ʊ": "U",
    "uː": "u:",
    "u": "u:",
    "ʌ": "V",
    "ə": "@",
    "ɚ": "3",
    "ɜː": "3:",
    "ɜ": "3:",
    "ɝ": "3:",
    "ɘ": "@",
    # stress, length, boundaries
    "ˈ": "'",
    "ˌ": ",",
    "ː": ":",
    " ": " ",
    ".": "",
    "-": " ",
}
_MAX_LEN = max(len(k) for k in _IPA_TO_ESPEAK)


class PhonemeError(ValueError):
    """A pronunciation that cannot be used (message names the offending symbols)."""


def ipa_to_espeak(ipa: str) -> str:
    """Convert IPA to espeak-ng mnemonics (greedy longest match). Raises PhonemeError naming unknown symbols."""
    out: list[str] = []
    unknown: list[str] = []
    i = 0
    text = ipa.strip().strip("/[]")
    while i < len(text):
        for size in range(min(_MAX_LEN, len(text) - i), 0, -1):
            piece = text[i : i + size]
            if piece in _IPA_TO_ESPEAK:
                out.append(_IPA_TO_ESPEAK[piece])
                i += size
                break
        else:
            unknown.append(text[i])
            i += 1
    if unknown:
        shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in dict.fromkeys(unknown))
        raise PhonemeError(f"IPA symbols with no espeak-ng equivalent: {shown}")
    return "".join(out).strip()
