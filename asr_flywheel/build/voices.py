"""Voice ids that name their engine (`flite:rms`, `festival:slt_hts`, `espeak:en-us`), and one synthesizer over
several engines.

A build mixes engines because one engine's voice is not what a recogniser meets: the manifest records each row's
full id, so a split can hold whole voices out and the judge can report per voice. `Engines` routes every call
to the synthesizer plugin that owns the id's engine; a bare id (no `engine:`) belongs to the default engine,
which keeps older manifests and commands meaning what they meant.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from asr_flywheel.build.phonemes import Pronunciation

#: `flywheel build`'s voices when none are given: realistic voices of two engines, each understood by a
#: recogniser trained on human speech (PocketSphinx carrier WER 0.01-0.06 on everyday sentences).
DEFAULT_VOICES: tuple[str, ...] = ("flite:rms", "flite:awb", "flite:kal16", "festival:kal", "festival:slt_hts")


@dataclass(frozen=True)
class Prosody:
    """A row's speaking style, chosen per row from the seed: `stretch` > 1 speaks slower, `pitch` scales F0."""

    stretch: float = 1.0
    pitch: float = 1.0

    def to_dict(self) -> dict[str, float]:
        return {"stretch": self.stretch, "pitch": self.pitch}


@dataclass(frozen=True)
class VoiceId:
    engine: str
    voice: str

    def __str__(self) -> str:
        return f"{self.engine}:{self.voice}"


def parse_voice(text: str, default_engine: str) -> VoiceId:
    engine, sep, voice = text.partition(":")
    return VoiceId(engine.strip(), voice.strip()) if sep else VoiceId(default_engine, text.strip())


def engine_name(synth: Any) -> str:
    """The id prefix a synthesizer plugin answers to (`engine`, else its plugin name)."""
    return str(getattr(synth, "engine", None) or synth.name)


def takes(synth: Any, keyword: str) -> bool:
    """Whether a synthesizer's `synthesize` accepts `keyword` (optional capabilities of older plugins)."""
    try:
        params = inspect.signature(synth.synthesize).parameters
    except (TypeError, ValueError):
        return False
    return keyword in params or any(p.kind is p.VAR_KEYWORD for p in params.values())


class Engines:
    """One synthesizer over many engines: each call goes to the engine named by the voice id."""

    name = "voices"

    def __init__(self, synthesizers: Mapping[str, Any], default_engine: str):
        self._by_engine = dict(synthesizers)
        self.default_engine = default_engine

    def _route(self, voice: str | None) -> tuple[Any, str | None]:
        vid = parse_voice(voice or "", self.default_engine)
        synth = self._by_engine.get(vid.engine)
        if synth is None:
            raise KeyError(vid.engine)
        return synth, (vid.voice or None)

    def plugin_name(self, voices: Sequence[str]) -> str:
        """The synthesizer plugin's name when every voice is one engine's (part of each clip's file name)."""
        engines = {parse_voice(v, self.default_engine).engine for v in voices}
        only = self._by_engine.get(next(iter(engines))) if len(engines) == 1 else None
        return str(only.name) if only is not None else self.name

    def canonical(self, voice: str) -> str:
        """The full id of `voice` (`en-us` → `espeak:en-us` when espeak is the default engine)."""
        return str(parse_voice(voice, self.default_engine))

    def installed(self) -> list[str]:
        """Every voice id the installed engines list (engines that cannot list theirs are left out)."""
        out = []
        for engine, synth in self._by_engine.items():
            lister = getattr(synth, "voices", None)
            if callable(lister):
                try:
                    out += [f"{engine}:{v}" for v in lister()]
                except Exception:  # an engine that is not installed lists nothing; check_voice says why
                    continue
        return out

    def check_voice(self, voice: str) -> str | None:
        vid = parse_voice(voice, self.default_engine)
        synth = self._by_engine.get(vid.engine)
        why: str | None
        if synth is None:
            why = f"no engine {vid.engine!r} (engines: {', '.join(self._by_engine)})"
        elif not vid.voice:
            why = f"no voice after {vid.engine!r}:"
        else:
            check = getattr(synth, "check_voice", None)
            why = check(vid.voice) if check else None
        return f"{why}; installed voices: {', '.join(self.installed()) or 'none'}" if why else None

    def unspeakable(self, text: str, voice: str) -> str | None:
        synth, bare = self._route(voice)
        check = getattr(synth, "unspeakable", None)
        return check(text, bare) if check else None

    def check_pronunciation(self, p: Pronunciation, voice: str) -> str | None:
        synth, _ = self._route(voice)
        if not takes(synth, "pronunciations"):
            return f"{synth.name} takes no phoneme input"
        check = getattr(synth, "check_pronunciation", None)
        return check(p) if check else None

    def babble_talkers(self, exclude: Sequence[str], talkers: int = 4) -> tuple[str, ...]:
        """Voices for babble noise that do not speak the rows: installed realistic voices first."""
        candidates = [v for v in self.installed() if v not in exclude]
        for engine, synth in self._by_engine.items():
            candidates += [
                f"{engine}:{v}" for v in getattr(synth, "babble_voices", ()) if f"{engine}:{v}" not in exclude
            ]
        return tuple(dict.fromkeys(candidates))[:talkers]

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
        synth, bare = self._route(voice)
        kwargs: dict[str, Any] = {"voice": bare, "sample_rate": sample_rate}
        if pronunciations:
            kwargs["pronunciations"] = tuple(pronunciations)
        if prosody is not None and takes(synth, "prosody"):
            kwargs["prosody"] = prosody
        return Path(synth.synthesize(text, out_path, **kwargs))

    def g2p_source(self, voice: str) -> str:
        """The `ipa_source` of words the voice's engine says by its own rules (lexicon and letter-to-sound)."""
        synth, _ = self._route(voice)
        return str(getattr(synth, "g2p_source", "g2p"))

    def varies_prosody(self, voice: str) -> bool:
        synth, _ = self._route(voice)
        return takes(synth, "prosody")

    def term_phones(self, term: str, voice: str, pronunciation: Pronunciation | None) -> str | None:
        """The phones the engine says for `term` (its own phone set), when the engine can tell."""
        synth, bare = self._route(voice)
        phones = getattr(synth, "term_phones", None)
        return phones(term, bare, pronunciation) if phones else None
