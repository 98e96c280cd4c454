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


def slug(text: str, limit: int = 40) -> str:
    """File-name-safe lowercase ASCII form of a term or voice."""
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")
    return (s or "x")[:limit]


def _pronunciation(term: TermSpec, tiers: list[dict[str, Pronunciation]]) -> Pronunciation | None:
    for tier in tiers:
        if term.key in tier:
            return tier[term.key]
    return None


def _combos(term: TermSpec, spec: PlanSpec) -> list[tuple[str, str, str]]:
    """(context, voice, noise) for a term: all of them, or a seeded per-term sample of `rows_per_term`."""
    combos = list(product(spec.contexts, spec.voices, spec.noise))
    if spec.rows_per_term is None or spec.rows_per_term >= len(combos):
        return combos
    rng = random.Random(seed_of(spec.seed, "combos", term.key))
    chosen = set(rng.sample(range(len(combos)), spec.rows_per_term))
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
    source = pron.source if pron else spec.g2p_source
    extra = f"{spec.synthesizer}|{pron.alphabet}:{pron.phonemes}" if pron else spec.synthesizer
    grouped: dict[tuple[str, str], list[str]] = {}
    for context, voice, noise in _combos(term, spec):
        grouped.setdefault((context, voice), []).append(noise)
    out = []
    for (context, voice), noises in grouped.items():
        frames = templates_for(context, term.category)
        frame = frames[seed_of(spec.seed, "frame", term.key, context, voice) % len(frames)]
        text = fill(frame, term.term)
        rows = tuple(_row(term, context, voice, text, n, spec, extra) for n in noises)
        out.append(Utterance(term, context, voice, text, source, pron, rows))
    return out


def plan(terms: list[TermSpec], spec: PlanSpec, tiers: list[dict[str, Pronunciation]]) -> list[Utterance]:
    if not spec.noise_kinds and any(n != CLEAN for n in spec.noise):
        raise ValueError("noisy levels requested but no noise kinds")
    return [u for t in terms for u in plan_term(t, spec, tiers)]
