"""flite (CMU's small synthesizer): clear, human-sounding voices that run offline in a tenth of a second.

Pronunciations (overrides, CMU dictionary entries) go in through flite's own lexicon addenda (`-add_lex`), in
ARPAbet; everything else is flite's CMU lexicon and letter-to-sound rules (`ipa_source = "g2p"`). Rows vary in
speed (`duration_stretch`) and, for voices that honour it, in pitch (`int_f0_target_mean`, scaled from the
voice's own mean: rms ignores the feature, measured).
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

#: Each voice's own mean F0 (Hz), which a row's `pitch` scales; a voice missing here keeps its pitch.
F0_MEAN_HZ = {"awb": 130.0, "slt": 170.0, "kal16": 105.0, "kal": 105.0}


@cache
def installed_voices() -> tuple[str, ...]:
    res = run([require("flite"), "-lv"])
    return tuple(res.stdout.partition(":")[2].split())


def addenda(pronunciations: Sequence[Pronunciation]) -> str:
    """flite's lexicon addenda for the pronunciations: `word : ph ph ...` per line (lower-case word)."""
    lines = []
    for p in pronunciations:
        for word, phones in word_entries(p):
            lines.append(f"{word} : {lowercase_phones(phones)}")
    return "\n".join(lines) + "\n"


class FliteSynthesizer(WordLexiconEngine):
    name = "flite"
    engine = "flite"
    babble_voices = ("slt", "kal")

    def voices(self) -> tuple[str, ...]:
        return installed_voices()

    def check_voice(self, voice: str) -> str | None:
        return None if voice in installed_voices() else f"flite has no voice {voice!r}"

    def _flite(self, text: str, voice: str | None, pronunciations, extra: list[str]):
        with tempfile.TemporaryDirectory(prefix="flite-") as tmp:
            cmd = [require("flite")]
            if voice:
                cmd += ["-voice", voice]
            if pronunciations:
                lex = Path(tmp) / "addenda.txt"
                lex.write_text(addenda(pronunciations), encoding="utf-8")
                cmd += ["-add_lex", str(lex)]
            return run([*cmd, *extra, "-t", text])

    def unspeakable(self, text: str, voice: str) -> str | None:
        foreign = foreign_letters(text)
        if foreign:
            return f"letters outside the Latin script: {foreign}"
        res = self._flite(text, voice, (), ["-ps", "-o", "none"])
        if res.returncode != 0:
            return (res.stderr.strip() or f"flite exited {res.returncode}")[:200]
        if not [p for p in res.stdout.split() if p != "pau"]:
            return "flite produces no phones for it"
        return None

    def term_phones(self, term: str, voice: str | None, pronunciation: Pronunciation | None) -> str | None:
        res = self._flite(term, voice, (pronunciation,) if pronunciation else (), ["-ps", "-o", "none"])
        phones = [p for p in res.stdout.split() if p != "pau"]
        return " ".join(phones) if res.returncode == 0 and phones else None

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
            addenda(pronunciations)
        except PhonemeError as exc:
            raise SynthesisError(str(exc)) from None
        features: list[str] = []
        if prosody is not None:
            features += ["--setf", f"duration_stretch={prosody.stretch:g}"]
            if voice in F0_MEAN_HZ and prosody.pitch != 1.0:
                features += ["--setf", f"int_f0_target_mean={F0_MEAN_HZ[voice] * prosody.pitch:.1f}"]

        def make_raw(raw: Path) -> None:
            res = self._flite(text, voice, pronunciations, [*features, "-o", str(raw)])
            if res.returncode != 0:
                raise failed("flite", res)

        return synthesise_to(out_path, sample_rate, make_raw)
