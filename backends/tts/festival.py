"""Festival (the Edinburgh speech synthesis system): the kal diphone voice and the slt HTS voice.

Each synthesis runs `festival --batch` on a small Scheme script: select the voice, add lexicon entries for the
row's pronunciations (ARPAbet, syllabified by Festival's own `lex.syllabify.phstress`), set the speaking rate,
synthesise and save. Festival writes 32 kHz for slt; sox resamples every engine to the manifest's rate.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from functools import cache
from pathlib import Path

from asr_flywheel.backends.tts._tools import (
    SynthesisError,
    WordLexiconEngine,
    failed,
    foreign_letters,
    require,
    run,
    synthesise_to,
)
from asr_flywheel.build.arpabet import lowercase_phones, word_entries
from asr_flywheel.build.phonemes import PhonemeError, Pronunciation
from asr_flywheel.build.voices import Prosody

#: Short ids for the Debian voice packages (`festvox-kallpc16k`, `festvox-us-slt-hts`); other installed voices
#: answer to their folder name.
ALIASES = {"kal": "kal_diphone", "slt_hts": "cmu_us_slt_arctic_hts"}
VOICE_ROOT = Path("/usr/share/festival/voices")


@cache
def installed_voices() -> tuple[str, ...]:
    folders = sorted(p.name for p in VOICE_ROOT.glob("*/*") if p.is_dir())
    short = {v: k for k, v in ALIASES.items()}
    return tuple(short.get(f, f) for f in folders)


def scheme_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def lexicon_entries(pronunciations: Sequence[Pronunciation]) -> str:
    out = []
    for p in pronunciations:
        for word, phones in word_entries(p):
            syllables = f"(lex.syllabify.phstress '({lowercase_phones(phones)}))"
            out.append(f"(lex.add.entry (list {scheme_string(word)} nil {syllables}))")
    return "\n".join(out)


_PRINT_WORDS = """(mapcar (lambda (w) (format t "WORD %s:" (item.name w))
  (mapcar (lambda (syl) (mapcar (lambda (s) (format t " %s" (item.name s))) (item.daughters syl)))
          (item.daughters (item.relation w 'SylStructure)))
  (format t "\\n")) (utt.relation.items u 'Word))"""
_FRONT_END = "(Initialize u) (Text u) (Token_POS u) (Token u) (POS u) (Phrasify u) (Word u) (Pauses u) (PostLex u)"


class FestivalSynthesizer(WordLexiconEngine):
    name = "festival"
    engine = "festival"
    babble_voices = ()

    def voices(self) -> tuple[str, ...]:
        return installed_voices()

    def check_voice(self, voice: str) -> str | None:
        require("festival")
        return None if voice in installed_voices() else f"Festival has no voice {voice!r}"

    def _run(self, voice: str | None, body: str):
        folder = ALIASES.get(voice or "kal", voice or "kal")
        with tempfile.TemporaryDirectory(prefix="festival-") as tmp:
            script = Path(tmp) / "say.scm"
            script.write_text(f"(voice_{folder})\n{body}\n", encoding="utf-8")
            return run([require("festival"), "--batch", str(script)])

    def _words(self, text: str, voice: str | None, pronunciations) -> list[tuple[str, list[str]]] | None:
        res = self._run(
            voice,
            f"{lexicon_entries(pronunciations)}\n(set! u (Utterance Text {scheme_string(text)}))\n"
            f"{_FRONT_END}\n{_PRINT_WORDS}",
        )
        if res.returncode != 0 or "SIOD ERROR" in res.stderr + res.stdout:
            return None
        words = []
        for line in res.stdout.splitlines():
            if line.startswith("WORD "):
                word, _, phones = line[5:].partition(":")
                words.append((word, phones.split()))
        return words

    def unspeakable(self, text: str, voice: str) -> str | None:
        foreign = foreign_letters(text)
        if foreign:
            return f"letters outside the Latin script: {foreign}"
        words = self._words(text, voice, ())
        if words is None:
            return "Festival could not process it"
        return None if any(p for _, p in words) else "Festival produces no phones for it"

    def term_phones(self, term: str, voice: str | None, pronunciation: Pronunciation | None) -> str | None:
        words = self._words(term, voice, (pronunciation,) if pronunciation else ())
        phones = [p for _, ps in words or [] for p in ps]
        return " ".join(phones) or None

    def synthesize(
        self,
        text: str,
        out_path: Path,
        *,
        voice: str | None = None,
        sample_rate: int = 16000,
        pronunciations: Sequence[Pronunciation] = (),
        prosody: Prosody | None = None,
    ) -> Path:
        if not text.strip():
            raise SynthesisError("nothing to synthesise: empty text")
        try:
            entries = lexicon_entries(pronunciations)
        except PhonemeError as exc:
            raise SynthesisError(str(exc)) from None
        stretch = f"(Parameter.set 'Duration_Stretch {prosody.stretch:g})" if prosody else ""

        def make_raw(raw: Path) -> None:
            res = self._run(
                voice,
                f"{entries}\n{stretch}\n(set! u (utt.synth (Utterance Text {scheme_string(text)})))\n"
                f"(utt.save.wave u {scheme_string(str(raw))} 'riff)",
            )
            if res.returncode != 0 or "SIOD ERROR" in res.stderr + res.stdout:
                raise failed("festival", res)

        return synthesise_to(out_path, sample_rate, make_raw)
