"""Build options and the report a build returns (typed records that cross the CLI / flow / demo boundary)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from asr_flywheel.build.judge import DEFAULT_JUDGE, DEFAULT_JUDGE_MAX, JudgeSummary
from asr_flywheel.build.noise import NOISE_KINDS, parse_noise_label
from asr_flywheel.build.templates import DEFAULT_CONTEXTS, TEMPLATES
from asr_flywheel.build.voices import DEFAULT_VOICES
from asr_flywheel.errors import Problem

#: `--lexicon cmudict`: the CMU pronouncing dictionary (shipped with pocketsphinx) as the lexicon tier.
CMUDICT = "cmudict"


@dataclass(frozen=True)
class BuildOptions:
    #: Voice ids `engine:voice`; a bare id belongs to `synthesizer`'s engine.
    voices: tuple[str, ...] = DEFAULT_VOICES
    #: `clean` and/or `snr_<dB>db` labels; every noisy label is mixed for real and measured.
    noise: tuple[str, ...] = ("clean",)
    #: Noise kinds a noisy row draws from (seeded per row): `pink`, `babble`.
    noise_kinds: tuple[str, ...] = NOISE_KINDS
    contexts: tuple[str, ...] = DEFAULT_CONTEXTS
    #: None: every (context, voice, noise) combination per term; N: a seeded sample of N of them per term.
    rows_per_term: int | None = None
    #: Verified pronunciations (`term,phonemes[,alphabet]`): ipa_source `override`.
    overrides: Path | None = None
    #: Lexicon pronunciations, same format, used when no override exists: ipa_source `lexicon`. `cmudict`: the
    #: CMU pronouncing dictionary (terms it lacks fall back to the engine's own rules).
    lexicon: Path | None = None
    #: The engine of voice ids given without `engine:` (older commands and manifests: espeak-ng's `en-us`).
    synthesizer: str = "espeak-ng"
    #: The eval-only model that hears every new clip (None: `--no-judge`), and the carrier-WER limit of a row.
    judge: str | None = DEFAULT_JUDGE
    judge_max: float = DEFAULT_JUDGE_MAX
    #: Voices that speak the babble noise (default: the synthesizer's `babble_voices`, else `voices`).
    babble_voices: tuple[str, ...] | None = None
    #: Parallel syntheses (default: all cores).
    workers: int | None = None
    seed: int = 0
    #: Where WAVs go, relative to the manifest's directory (rows store relative paths).
    audio_dir: str = "audio"
    #: None: `[manifest] sample_rate` (16 kHz by default), so built audio always passes validation.
    sample_rate: int | None = None
    progress: bool = True

    def problems(self) -> list[Problem]:
        p = []
        if not self.voices:
            p.append(Problem(0, "voices", "at least one voice is needed"))
        for label in self.noise:
            try:
                parse_noise_label(label)
            except ValueError as exc:
                p.append(Problem(0, "noise", str(exc)))
        if not self.noise:
            p.append(Problem(0, "noise", "at least one noise level is needed (e.g. clean)"))
        p += [
            Problem(0, "noise_kinds", f"unknown kind {k!r} (known: pink, babble)")
            for k in self.noise_kinds
            if k not in NOISE_KINDS
        ]
        if not self.noise_kinds:
            p.append(Problem(0, "noise_kinds", "at least one kind is needed"))
        p += [
            Problem(0, "contexts", f"no templates for {c!r} (known: {', '.join(TEMPLATES)})")
            for c in self.contexts
            if c not in TEMPLATES
        ]
        if not self.contexts:
            p.append(Problem(0, "contexts", "at least one context is needed"))
        if self.rows_per_term is not None and self.rows_per_term < 1:
            p.append(Problem(0, "rows_per_term", "must be at least 1"))
        if self.workers is not None and self.workers < 1:
            p.append(Problem(0, "workers", "must be at least 1"))
        if not (math.isfinite(self.judge_max) and self.judge_max >= 0):
            p.append(Problem(0, "judge_max", f"{self.judge_max} must be a finite carrier WER >= 0 (e.g. 0.5)"))
        if len(set(self.voices)) != len(self.voices) or len(set(self.noise)) != len(self.noise):
            p.append(Problem(0, "voices/noise", "listed twice"))
        return p


@dataclass
class BuildReport:
    manifest: Path
    rows_added: int
    rows_total: int
    #: Content hash before (None for a new manifest) and after; equal when nothing was added.
    version_before: str | None
    version: str
    terms_added: list[str] = field(default_factory=list)
    #: Terms of the CSV already in the manifest (append): kept as they are, not rebuilt.
    terms_present: list[str] = field(default_factory=list)
    #: New terms every row of which the judge rejected (they are in the rejects file, not the manifest).
    terms_without_rows: list[str] = field(default_factory=list)
    by_ipa_source: dict[str, int] = field(default_factory=dict)
    by_noise_kind: dict[str, int] = field(default_factory=dict)
    by_voice: dict[str, int] = field(default_factory=dict)
    #: Largest |measured SNR - label| over the new noisy rows (dB).
    max_snr_error_db: float | None = None
    #: The judge's verdict on the new rows (None: not judged).
    judge: JudgeSummary | None = None
    synthesis_seconds: float = 0.0
    seconds: float = 0.0

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["manifest"] = str(self.manifest)
        d["judge"] = self.judge.to_dict() if self.judge else None
        return d
