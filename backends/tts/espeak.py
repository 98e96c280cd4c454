"""Local synthesizer: espeak-ng (accepts phoneme input) resampled to 16 kHz mono 16-bit by sox.

The default synthesizer because it runs offline everywhere; quality is robotic, which is fine for
exercising the pipeline and for pronunciation-tier experiments: an override's phonemes replace the term inside
the sentence as espeak's inline `[[...]]` mnemonics (IPA is converted first), and everything else goes through
espeak's own grapheme-to-phoneme rules (`ipa_source = "g2p"`).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from asr_flywheel.backends.tts._tools import SynthesisError, failed, synthesise_to
from asr_flywheel.backends.tts._tools import require as _require
from asr_flywheel.backends.tts._tools import run as _run
from asr_flywheel.build.arpabet import arpabet_to_ipa, parse_arpabet
from asr_flywheel.build.phonemes import ALPHABETS, PhonemeError, Pronunciation, ipa_to_espeak


def espeak_mnemonics(p: Pronunciation) -> str:
    """The `[[...]]` body espeak-ng reads for a pronunciation, in either alphabet."""
    if p.alphabet == "espeak":
        if set("[]") & set(p.phonemes):
            raise PhonemeError("espeak phonemes must not contain '[' or ']' (the build adds the [[...]] brackets)")
        return p.phonemes.strip()
    if p.alphabet == "ipa":
        return ipa_to_espeak(p.phonemes)
    if p.alphabet == "arpabet":
        return " ".join(ipa_to_espeak(arpabet_to_ipa(parse_arpabet(part))) for part in p.phonemes.split("|"))
    raise PhonemeError(f"unknown alphabet {p.alphabet!r} (known: {', '.join(ALPHABETS)})")


def with_phonemes(text: str, pronunciations: Sequence[Pronunciation]) -> str:
    """`text` with each pronounced phrase replaced by `[[mnemonics]]` (whole words, any case)."""
    for p in pronunciations:
        pattern = re.compile(rf"(?<!\w){re.escape(p.phrase)}(?!\w)", re.IGNORECASE)
        if not pattern.search(text):
            raise SynthesisError(f"pronounced phrase {p.phrase!r} does not occur in {text!r}")
        text = pattern.sub(lambda _m, p=p: f"[[{espeak_mnemonics(p)}]]", text)
    return text


@cache
def _voice_problem(espeak: str, voice: str) -> str | None:
    res = _run([espeak, "-q", "-x", "-v", voice, "--", "a"])
    if res.returncode == 0:
        return None
    said = (res.stderr.strip() or res.stdout.strip() or f"espeak-ng exited {res.returncode}").removeprefix("Error: ")
    return f"{said} (list them with `espeak-ng --voices=en`)"


def _foreign_letters(text: str) -> list[str]:
    """Letters an English voice would spell out by script name ("Chinese letter ...") instead of saying."""
    return [c for c in dict.fromkeys(text) if c.isalpha() and not unicodedata.name(c, "").startswith("LATIN")]


@cache
def _installed(espeak: str) -> tuple[str, ...]:
    lines = _run([espeak, "--voices=en"]).stdout.splitlines()[1:]
    names = (line.split()[1] for line in lines if len(line.split()) > 1)
    return tuple(n for n in dict.fromkeys(names) if n != "variant")


class EspeakSynthesizer:
    name = "espeak-ng"
    engine = "espeak"
    #: The manifest's `ipa_source` for words spoken by espeak's own grapheme-to-phoneme rules.
    g2p_source = "g2p"
    #: Talkers of the babble noise: voices a build usually does not use for its rows.
    babble_voices = ("en-us+f3", "en-gb+m3", "en-029", "en-gb-scotland", "en-us+m4", "en-gb-x-rp+f2", "en-us-nyc")

    def __init__(self, speed_wpm: int = 160):
        self.speed_wpm = speed_wpm

    def voices(self) -> tuple[str, ...]:
        """The English voices (variants such as `en-us+f3` are accepted too)."""
        return _installed(_require("espeak-ng"))

    def term_phones(self, term: str, voice: str | None, pronunciation: Pronunciation | None) -> str | None:
        said = f"[[{espeak_mnemonics(pronunciation)}]]" if pronunciation else term
        res = _run([_require("espeak-ng"), "-q", "-x", *(["-v", voice] if voice else []), "--", said])
        return " ".join(res.stdout.split()) or None if res.returncode == 0 else None

    def check_voice(self, voice: str) -> str | None:
        """Why espeak-ng cannot use `voice` (None when it can)."""
        return _voice_problem(_require("espeak-ng"), voice)

    def unspeakable(self, text: str, voice: str) -> str | None:
        """Why `voice` cannot say `text` (None when it can): foreign script for an English voice, or no phonemes."""
        if voice.split("+")[0].startswith("en"):
            foreign = _foreign_letters(text)
            if foreign:
                return f"letters outside the Latin script: {''.join(foreign)}"
        res = _run([_require("espeak-ng"), "-q", "-x", "-v", voice, "--", text])
        if res.returncode != 0:
            return res.stderr.strip()[:200] or f"espeak-ng exited {res.returncode}"
        if not res.stdout.strip():
            return "espeak-ng produces no phonemes for it"
        return None

    def check_pronunciation(self, p: Pronunciation) -> str | None:
        try:
            return None if espeak_mnemonics(p) else "no phonemes"
        except PhonemeError as exc:
            return str(exc)

    def synthesize(
        self,
        text: str,
        out_path: Path,
        *,
        voice: str | None = None,
        phonemes: str | None = None,
        sample_rate: int = 16000,
        pronunciations: Sequence[Pronunciation] = (),
    ) -> Path:
        """Write a WAV for `text` (or for espeak phoneme mnemonics in `phonemes`). Atomic: temp + rename.

        `pronunciations` say phrases of `text` with given phonemes (verified overrides, lexicon entries).
        """
        espeak = _require("espeak-ng")
        if not (phonemes or text or "").strip():
            raise SynthesisError("nothing to synthesise: empty text")
        try:
            spoken = f"[[{phonemes}]]" if phonemes else with_phonemes(text, pronunciations)
        except PhonemeError as exc:
            raise SynthesisError(str(exc)) from None
        rate = self.speed_wpm  # espeak keeps one speed per build (the base recipe varies it per row itself)

        def make_raw(raw: Path) -> None:
            cmd = [espeak, "-s", str(rate), "-w", str(raw)]
            if voice:
                cmd += ["-v", voice]
            # "--" so text starting with "-" is never read as an option.
            res = _run([*cmd, "--", spoken])
            if res.returncode != 0:
                raise failed("espeak-ng", res)

        return synthesise_to(out_path, sample_rate, make_raw)
