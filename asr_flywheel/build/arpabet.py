"""ARPAbet: the phone set of flite, Festival (CMU lexicon) and the CMU pronouncing dictionary.

An IPA override is converted to ARPAbet for those engines (flite's `-add_lex`, Festival's `lex.add.entry`), and
a CMU dictionary entry (ARPAbet) is converted to IPA for espeak-ng and SSML. Stress: an IPA `ˈ`/`ˌ` marks the
next vowel 1/2 and every other vowel is 0; a pronunciation without any mark stresses its first vowel, because
both engines need one primary stress per word to place pitch accents. A symbol with no ARPAbet equivalent is an
error naming it, never dropped.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path

from asr_flywheel.build.phonemes import PhonemeError, Pronunciation

VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
CONSONANTS = (
    "B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T", "TH", "V", "W",
    "Y", "Z", "ZH",
)  # fmt: skip

# IPA (General American and RP) → ARPAbet phones; longest symbols are tried first.
_IPA = {
    "tʃ": "CH", "t͡ʃ": "CH", "dʒ": "JH", "d͡ʒ": "JH", "p": "P", "b": "B", "t": "T", "d": "D", "k": "K", "g": "G",
    "ɡ": "G", "f": "F", "v": "V", "θ": "TH", "ð": "DH", "s": "S", "z": "Z", "ʃ": "SH", "ʒ": "ZH", "h": "HH",
    "m": "M", "n": "N", "ŋ": "NG", "l": "L", "ɫ": "L", "r": "R", "ɹ": "R", "ɾ": "T", "w": "W", "j": "Y",
    "eɪ": "EY", "aɪ": "AY", "ɔɪ": "OY", "aʊ": "AW", "oʊ": "OW", "əʊ": "OW", "ɪə": "IH R", "ɛə": "EH R",
    "ʊə": "UH R", "ɝ": "ER", "ɚ": "ER", "ɜː": "ER", "ɜ": "ER", "iː": "IY", "i": "IY", "ɪ": "IH", "ᵻ": "IH",
    "e": "EY", "ɛ": "EH", "æ": "AE", "a": "AA", "ɐ": "AH", "ɑː": "AA", "ɑ": "AA", "ɒ": "AA", "ɔː": "AO",
    "ɔ": "AO", "o": "OW", "oː": "OW", "ʊ": "UH", "uː": "UW", "u": "UW", "ʌ": "AH", "ə": "AH", "ɘ": "AH",
}  # fmt: skip
_MAX = max(len(k) for k in _IPA)
_IGNORED = set("ː.-/[] ")
_STRESS = {"ˈ": "1", "ˌ": "2"}

# ARPAbet → IPA (General American), for engines that read IPA (espeak-ng through its mnemonics, SSML).
_TO_IPA = {
    "AA": "ɑ", "AE": "æ", "AH": "ʌ", "AO": "ɔ", "AW": "aʊ", "AY": "aɪ", "EH": "ɛ", "ER": "ɝ", "EY": "eɪ", "IH": "ɪ",
    "IY": "i", "OW": "oʊ", "OY": "ɔɪ", "UH": "ʊ", "UW": "u", "B": "b", "CH": "tʃ", "D": "d", "DH": "ð", "F": "f",
    "G": "ɡ", "HH": "h", "JH": "dʒ", "K": "k", "L": "l", "M": "m", "N": "n", "NG": "ŋ", "P": "p", "R": "ɹ", "S": "s",
    "SH": "ʃ", "T": "t", "TH": "θ", "V": "v", "W": "w", "Y": "j", "Z": "z", "ZH": "ʒ",
}  # fmt: skip
_PHONE = re.compile(r"^([A-Z]+)([012]?)$")


def ipa_to_arpabet(ipa: str) -> list[str]:
    """IPA → ARPAbet phones with stress digits on vowels (e.g. `ˈvæŋkə` → V AE1 NG K AH0)."""
    text = ipa.strip()
    phones: list[str] = []
    unknown: list[str] = []
    pending = ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch in _STRESS:
            pending, i = _STRESS[ch], i + 1
            continue
        if ch in _IGNORED:
            i += 1
            continue
        for size in range(min(_MAX, len(text) - i), 0, -1):
            piece = text[i : i + size]
            if piece in _IPA:
                for phone in _IPA[piece].split():
                    if phone in VOWELS:
                        phones.append(phone + (pending or "0"))
                        pending = ""
                    else:
                        phones.append(phone)
                i += size
                break
        else:
            unknown.append(ch)
            i += 1
    if unknown:
        shown = " ".join(f"{c!r} (U+{ord(c):04X})" for c in dict.fromkeys(unknown))
        raise PhonemeError(f"IPA symbols with no ARPAbet equivalent: {shown}")
    return with_primary_stress(phones)


def with_primary_stress(phones: list[str]) -> list[str]:
    """The phones, with the first vowel stressed when none is (engines place pitch accents on stress 1)."""
    if any(p[-1] in "12" for p in phones if p[:-1] in VOWELS):
        return phones
    out = list(phones)
    for k, p in enumerate(out):
        if p[:-1] in VOWELS:
            out[k] = p[:-1] + "1"
            break
    return out


def parse_arpabet(text: str) -> list[str]:
    """Space-separated ARPAbet (any case, stress digits optional) → canonical phones; unknown ones are named."""
    phones, bad = [], []
    for token in text.replace(",", " ").split():
        m = _PHONE.match(token.upper())
        base = m.group(1) if m else ""
        if base in VOWELS:
            phones.append(base + (m.group(2) if m and m.group(2) else "0"))
        elif base in CONSONANTS and m and not m.group(2):
            phones.append(base)
        else:
            bad.append(token)
    if bad:
        raise PhonemeError(f"not ARPAbet phones: {', '.join(repr(b) for b in dict.fromkeys(bad))}")
    if not phones:
        raise PhonemeError("no phones")
    return with_primary_stress(phones)


def arpabet_to_ipa(phones: list[str]) -> str:
    """ARPAbet → IPA with stress marks before stressed vowels (AH0 is schwa)."""
    out = []
    for p in phones:
        base, stress = (p[:-1], p[-1]) if p[-1].isdigit() else (p, "")
        sym = "ə" if base == "AH" and stress == "0" else "ɚ" if base == "ER" and stress == "0" else _TO_IPA[base]
        out.append({"1": "ˈ", "2": "ˌ"}.get(stress, "") + sym)
    return "".join(out)


def lowercase_phones(phones: list[str]) -> str:
    """The form flite's `-add_lex` and Festival's lexicon read: `v ae1 ng k ah0`."""
    return " ".join(p.lower() for p in phones)


def cmudict_path() -> Path | None:
    """The CMU pronouncing dictionary shipped in the `pocketsphinx` wheel (found without importing it)."""
    spec = importlib.util.find_spec("pocketsphinx")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "model" / "en-us" / "cmudict-en-us.dict"
    return path if path.is_file() else None


@cache
def cmudict() -> dict[str, list[str]]:
    """word → ARPAbet phones (first pronunciation; `word(2)` variants are skipped). Empty when not installed."""
    path = cmudict_path()
    entries: dict[str, list[str]] = {}
    if path is None:
        return entries
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
        word, _, phones = line.partition(" ")
        if "(" in word or not phones:
            continue
        entries.setdefault(word.lower(), phones.split())
    return entries


def cmudict_phones(phrase: str) -> list[str] | None:
    """A phrase's ARPAbet from the CMU dictionary (every word must be in it), or None."""
    words = re.findall(r"[a-z0-9']+", phrase.lower())
    table = cmudict()
    if not words or any(w not in table for w in words):
        return None
    return [p for w in words for p in with_primary_stress(list(table[w]))]


def word_entries(p: Pronunciation) -> list[tuple[str, list[str]]]:
    """Lexicon entries (word, ARPAbet) that make an engine with a word lexicon say `p.phrase` as `p.phonemes`.

    flite and Festival look words up one at a time, so a phrase of several words needs its phonemes split the
    same way: on spaces or hyphens in IPA, on `|` in ARPAbet. espeak mnemonics have no ARPAbet equivalent.
    """
    words = re.findall(r"[a-z0-9']+", p.phrase.lower())
    convert: Callable[[str], list[str]]
    if p.alphabet == "ipa":
        parts = [x for x in re.split(r"[\s\-‿]+", p.phonemes.strip().strip("/[]")) if x]
        convert = ipa_to_arpabet
    elif p.alphabet == "arpabet":
        parts = [x for x in p.phonemes.split("|") if x.strip()]
        convert = parse_arpabet
    else:
        raise PhonemeError(f"{p.alphabet} phonemes cannot be given to a lexicon engine; write them in IPA or ARPAbet")
    if not words:
        raise PhonemeError(f"{p.phrase!r} has no words to give a pronunciation")
    if len(words) == 1:
        return [(words[0], convert(" ".join(parts)))]
    if len(parts) != len(words):
        sep = "spaces or hyphens" if p.alphabet == "ipa" else "'|'"
        raise PhonemeError(
            f"{p.phrase!r} is {len(words)} words for a word lexicon, but its phonemes are {len(parts)} part(s): "
            f"separate one part per word with {sep}"
        )
    return [(w, convert(part)) for w, part in zip(words, parts, strict=True)]
