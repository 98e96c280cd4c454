"""What a build will write, decided before any audio is made: sentences, pronunciations, noise, file names.

Everything about a row is a function of that row's own inputs (term, context, voice, noise label, seed), never
of its position or of other terms, so appending terms cannot change an existing row and a rebuild is identical.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass, field
from itertools import product

from asr_flywheel.build.noise import CLEAN, parse_noise_label, seed_of
from asr_flywheel.build.phonemes import Pronunciation
from asr_flywheel.build.templates import fill, templates_for
from asr_flywheel.build.terms import TermSpec
from asr_flywheel.build.voices import Prosody
from asr_flywheel.errors import Problem

#: A row's speaking rate (duration stretch) and pitch scale are drawn from these, seeded per utterance.
STRETCHES = (0.9, 1.0, 1.1)
PITCHES = (0.94, 1.0, 1.06)


@dataclass(frozen=True)
class PlannedRow:
    """One manifest row to write: a noise variant of an utterance."""

    noise_level: str
    noise_kind: str | None
    snr_target: float | None
    audio_relpath: str
    noise_seed: int


@dataclass(frozen=True)
class Utterance:
    """One synthesis (term in a sentence, by a voice); its rows share the same clean speech."""

    term: TermSpec
    context: str
    voice: str
    text: str
    ipa_source: str
    pronunciation: Pronunciation | None
    rows: tuple[PlannedRow, ...] = field(default=())
    prosody: Prosody = field(default=Prosody())


@dataclass(frozen=True)
class PlanSpec:
    """The options a plan depends on (a subset of BuildOptions, so this module needs nothing else)."""

    contexts: tuple[str, ...]
    voices: tuple[str, ...]
    noise: tuple[str, ...]
    noise_kinds: tuple[str, ...]
    rows_per_term: int | None
    seed: int
    synthesizer: str
    g2p_source: str
    audio_dir: str
    #: The `ipa_source` of each voice's engine's own rules, where it differs from `g2p_source` (riva: magpie_g2p).
    g2p_sources: dict[str, str] = field(default_factory=dict)


def slug(text: str, limit: int = 40) -> str:
    """File-name-safe lowercase ASCII form of a term or voice."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s or "x")[:limit]


def _pronunciation(term: TermSpec, tiers: list[dict[str, Pronunciation]]) -> Pronunciation | None:
    for tier in tiers:
        if term.key in tier:
            return tier[term.key]
    return None


def distinct_rows(term: TermSpec, spec: PlanSpec) -> int:
    """How many different rows a term can have: contexts × its category's templates × voices × noise levels."""
    frames = sum(len(templates_for(c, term.category)) for c in spec.contexts)
    return frames * len(spec.voices) * len(spec.noise)


def _combos(term: TermSpec, spec: PlanSpec) -> list[tuple[str, int | None, str, str]]:
    """(context, frame, voice, noise) for a term.

    Without `rows_per_term`: every (context, voice, noise), with one seeded frame per (context, voice). With it: a
    seeded per-term sample of that many from every (context, frame, voice, noise); asking for more than exist is
    refused before synthesis (`rows_per_term_problems`), never silently capped.
    """
    if spec.rows_per_term is None:
        return [(c, None, v, n) for c, v, n in product(spec.contexts, spec.voices, spec.noise)]
    rng = random.Random(seed_of(spec.seed, "combos", term.key))
    plain = list(product(spec.contexts, spec.voices, spec.noise))
    if spec.rows_per_term <= len(plain):  # one seeded sentence per (context, voice), as builds always had
        chosen = set(rng.sample(range(len(plain)), spec.rows_per_term))
        return [(c, None, v, n) for i, (c, v, n) in enumerate(plain) if i in chosen]
    combos = [
        (c, f, v, n)
        for c in spec.contexts
        for f in range(len(templates_for(c, term.category)))
        for v in spec.voices
        for n in spec.noise
    ]
    chosen = set(rng.sample(range(len(combos)), min(spec.rows_per_term, len(combos))))
    return [c for i, c in enumerate(combos) if i in chosen]


def _row(term: TermSpec, context: str, voice: str, text: str, noise: str, spec: PlanSpec, extra: str) -> PlannedRow:
    snr = parse_noise_label(noise)
    kind = None
    if snr is not None:
        kind = spec.noise_kinds[seed_of(spec.seed, "kind", term.key, context, voice, noise) % len(spec.noise_kinds)]
    noise_seed = seed_of(spec.seed, "noise", term.key, context, voice, noise)
    key = "\x1f".join([term.term, term.category, context, voice, noise, str(kind), text, extra, str(spec.seed)])
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    name = f"{slug(term.term)}_{context}_{slug(voice, 24)}_{noise}_{digest}.wav"
    return PlannedRow(noise, kind, snr, f"{spec.audio_dir}/{name}", noise_seed)


def plan_term(term: TermSpec, spec: PlanSpec, tiers: list[dict[str, Pronunciation]]) -> list[Utterance]:
    """The utterances (and their noise rows) for one term, in a stable order."""
    pron = _pronunciation(term, tiers)
    extra = f"{spec.synthesizer}|{pron.alphabet}:{pron.phonemes}" if pron else spec.synthesizer
    grouped: dict[tuple[str, int | None, str], list[str]] = {}
    for context, frame, voice, noise in _combos(term, spec):
        grouped.setdefault((context, frame, voice), []).append(noise)
    out = []
    for (context, frame, voice), noises in grouped.items():
        frames = templates_for(context, term.category)
        pick = frame if frame is not None else seed_of(spec.seed, "frame", term.key, context, voice) % len(frames)
        text = fill(frames[pick], term.term)
        prosody = Prosody(
            STRETCHES[seed_of(spec.seed, "stretch", term.key, context, voice, text) % len(STRETCHES)],
            PITCHES[seed_of(spec.seed, "pitch", term.key, context, voice, text) % len(PITCHES)],
        )
        rows = tuple(_row(term, context, voice, text, n, spec, extra) for n in noises)
        source = pron.source if pron else spec.g2p_sources.get(voice, spec.g2p_source)
        out.append(Utterance(term, context, voice, text, source, pron, rows, prosody))
    return out


def rows_per_term_problems(terms: list[TermSpec], spec: PlanSpec) -> list[Problem]:
    """Terms that cannot get `rows_per_term` distinct rows, with the arithmetic (checked before synthesis)."""
    if spec.rows_per_term is None:
        return []
    problems = []
    for t in terms:
        most = distinct_rows(t, spec)
        if spec.rows_per_term > most:
            frames = sum(len(templates_for(c, t.category)) for c in spec.contexts)
            problems.append(
                Problem(
                    t.line,
                    "rows_per_term",
                    f"{t.term!r} can have at most {most} distinct rows ({frames} sentences in {len(spec.contexts)} "
                    f"context(s) × {len(spec.voices)} voice(s) × {len(spec.noise)} noise level(s)), not "
                    f"{spec.rows_per_term}: add voices, contexts or noise levels, or ask for fewer",
                )
            )
    return problems


def plan(terms: list[TermSpec], spec: PlanSpec, tiers: list[dict[str, Pronunciation]]) -> list[Utterance]:
    if not spec.noise_kinds and any(n != CLEAN for n in spec.noise):
        raise ValueError("noisy levels requested but no noise kinds")
    return [u for t in terms for u in plan_term(t, spec, tiers)]
