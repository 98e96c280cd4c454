"""Build or grow a manifest by synthesis: check everything, synthesise and judge in parallel, append atomically.

Order matters for the rules: every input problem (bad term lines, unknown voices, unusable pronunciations, more
rows per term than can be distinct) is collected before any audio is made; WAVs are written before the
manifest, and the manifest is replaced in one rename after the new version passes validation. Existing rows are
copied byte for byte, so growth never rewrites them, and their WAVs are never touched. Rows the judge finds
unintelligible go to the rejects file, never into the manifest.

The synthesizers are passed in (core does not look up plugins) as `Engines` (one per voice-id engine) or a single
synthesizer. Optional synthesizer methods the build uses when present: `voices()`, `check_voice(voice)`,
`unspeakable(text, voice)`, `check_pronunciation(p)` (each returns a reason or None), `term_phones(term, voice,
pronunciation)`, and attributes `engine`, `g2p_source` and `babble_voices`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from asr_flywheel.build.arpabet import cmudict_path, cmudict_phones
from asr_flywheel.build.noise import CLEAN, parse_noise_label
from asr_flywheel.build.options import CMUDICT, BuildOptions, BuildReport
from asr_flywheel.build.phonemes import Pronunciation
from asr_flywheel.build.pipeline import Rendered, render_and_judge, split_rejects
from asr_flywheel.build.plan import PlanSpec, plan, rows_per_term_problems
from asr_flywheel.build.render import BuildError, make_babble
from asr_flywheel.build.terms import TermSpec, read_pronunciations, read_terms
from asr_flywheel.build.voices import Engines, engine_name
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.io import jsonl_bytes
from asr_flywheel.manifest import content_hash
from asr_flywheel.normalize import normalize
from asr_flywheel.validation import validate_manifest


def as_engines(synthesizer: Any) -> Engines:
    return (
        synthesizer
        if isinstance(synthesizer, Engines)
        else Engines({engine_name(synthesizer): synthesizer}, engine_name(synthesizer))
    )


def _existing(out: Path, append: bool, cfg: FlywheelConfig) -> tuple[bytes, list[dict]]:
    if not out.exists():
        return b"", []
    if not append:
        raise InputError(f"{out} exists: pass --append to grow it (existing rows are kept as they are)")
    report = validate_manifest(out, cfg, check_audio=True)  # grow only a manifest a cycle would accept
    report.raise_if_invalid()
    return out.read_bytes(), report.manifest.rows


def _speech_problems(terms: list[TermSpec], voices: tuple[str, ...], engines: Engines, workers: int) -> list[Problem]:
    """Voices that do not exist, and (term, voice) pairs an engine says it cannot speak."""
    problems = []
    bad_voices = set()
    for voice in voices:
        why = engines.check_voice(voice)
        if why:
            bad_voices.add(voice)
            problems.append(Problem(0, "voices", f"{voice!r}: {why}"))
    pairs = [(t, v) for t in terms for v in voices if v not in bad_voices]
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(lambda tv: engines.unspeakable(tv[0].term, tv[1]), pairs))
    for (term, voice), why in zip(pairs, reasons, strict=True):
        if why:
            problems.append(Problem(term.line, "term", f"voice {voice!r} cannot speak {term.term!r}: {why}"))
    return problems


def _pronunciation_problems(
    tiers: list[dict], terms: list[TermSpec], voices: tuple[str, ...], engines: Engines
) -> list[Problem]:
    """Pronunciations the new terms will use that a voice's engine cannot take (reported on the term's line)."""
    problems = []
    for t in terms:
        pron = next((tier[t.key] for tier in tiers if t.key in tier), None)
        if pron is None:
            continue
        for voice in voices:
            why = engines.check_pronunciation(pron, voice)
            if why:
                problems.append(
                    Problem(t.line, "term", f"{pron.source} pronunciation of {t.term!r} unusable by {voice}: {why}")
                )
    return problems


def _cmudict_tier(terms: list[TermSpec]) -> tuple[dict, list[Problem]]:
    """The CMU dictionary as a lexicon tier: terms whose every word it knows (the rest fall back to g2p)."""
    if cmudict_path() is None:
        return {}, [Problem(0, "lexicon", "the CMU dictionary ships with pocketsphinx, which is not installed")]
    found = {}
    for t in terms:
        phones = cmudict_phones(t.term)
        if phones:
            found[t.key] = Pronunciation(t.term, " ".join(phones), alphabet="arpabet", source="lexicon")
    return found, []


def _tiers(options: BuildOptions, terms: list[TermSpec]) -> tuple[list[dict], list[Problem]]:
    tiers, problems = [], []
    for path, source in ((options.overrides, "override"), (options.lexicon, "lexicon")):
        if path is not None and str(path) == CMUDICT:
            found, probs = _cmudict_tier(terms)
        else:
            found, probs = read_pronunciations(path, source) if path else ({}, [])
        tiers.append(found)
        problems += probs
    return tiers, problems


def _prepare(terms_csv, out: Path, options: BuildOptions, engines: Engines, cfg, append: bool, workers: int):
    """Everything checked up front: returns (existing bytes, existing rows, new terms, present terms, tiers)."""
    problems = options.problems()
    terms, term_problems = read_terms(terms_csv, cfg.manifest.categories)
    problems += term_problems
    old_bytes, old_rows = _existing(out, append, cfg)
    present_keys = {normalize(str(r.get("term") or "")) for r in old_rows}
    new_terms = [t for t in terms if t.key not in present_keys]
    present = [t.term for t in terms if t.key in present_keys]
    tiers, pron_problems = _tiers(options, new_terms)
    problems += pron_problems
    known = [v for v in options.voices if not engines.check_voice(v)]
    sources = sorted({engines.g2p_source(v) for v in known}) + [
        s for s, f in (("override", options.overrides), ("lexicon", options.lexicon)) if f
    ]
    problems += [
        Problem(0, "ipa_source", f"{s!r} is not in [manifest] ipa_sources; add it there")
        for s in sources
        if s not in cfg.manifest.ipa_sources
    ]
    if not options.problems():  # the speech checks need valid voices and levels; bad terms are checked regardless
        problems += rows_per_term_problems(new_terms, _spec(options, engines))
        problems += _speech_problems(new_terms, options.voices, engines, workers)
        problems += _pronunciation_problems(tiers, new_terms, options.voices, engines)
    if problems:
        raise InputError(f"{terms_csv}: {len(problems)} problem(s); nothing was built", problems)
    return old_bytes, old_rows, new_terms, present, tiers


def _check_out(out: Path) -> None:
    """The manifest and its audio folder must be writable before any clip is synthesised."""
    from asr_flywheel.cycle import require_writable_dir

    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give the manifest file (JSONL) to write")
    require_writable_dir(out.parent, f"--out {out}: its folder")


def _spec(options: BuildOptions, synthesizer: Any) -> PlanSpec:
    engines = as_engines(synthesizer)
    return PlanSpec(
        contexts=options.contexts,
        voices=options.voices,
        noise=options.noise,
        noise_kinds=options.noise_kinds,
        rows_per_term=options.rows_per_term,
        seed=options.seed,
        synthesizer=engines.plugin_name(options.voices),
        g2p_source="g2p",
        audio_dir=options.audio_dir.strip("/") or ".",
        g2p_sources={v: engines.g2p_source(v) for v in options.voices if not engines.check_voice(v)},
    )


def _babble(utts, engines: Engines, options: BuildOptions, base_dir: Path):
    if not any(r.noise_kind == "babble" for u in utts for r in u.rows):
        return None
    voices = options.babble_voices or engines.babble_talkers(options.voices) or options.voices
    if len(voices) < 2:
        raise InputError("babble noise needs at least two babble voices (--babble-voices)")
    (base_dir / options.audio_dir).mkdir(parents=True, exist_ok=True)
    rate = cast(int, options.sample_rate)  # filled from [manifest] before rendering
    return make_babble(engines, tuple(voices), base_dir / options.audio_dir, rate, options.seed)


def _write_manifest(out: Path, old_bytes: bytes, new_rows: list[dict], cfg: FlywheelConfig) -> str:
    """Existing bytes + new rows, validated (audio read back) under a temp name, then one atomic rename.

    Returns the new version. A crash before the rename leaves the old manifest exactly as it was.
    """
    prefix = old_bytes if not old_bytes or old_bytes.endswith(b"\n") else old_bytes + b"\n"
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(prefix + jsonl_bytes(new_rows))
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o644)
        report = validate_manifest(tmp, cfg, check_audio=True)
        if not report.ok:
            shown = "\n".join(f"  {p}" for p in report.problems[:20])
            raise BuildError(f"the built manifest fails validation (a bug; nothing written):\n{shown}")
        if old_bytes and out.read_bytes() != old_bytes:
            raise BuildError(f"{out} changed while building; nothing written, rerun the build")
        os.replace(tmp, out)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return report.manifest.version


def run_build(
    terms_csv: str | Path,
    out_manifest: str | Path,
    options: BuildOptions,
    *,
    synthesizer,
    config: FlywheelConfig | None = None,
    append: bool = False,
    progress=None,
    judge=None,
) -> BuildReport:
    """Build `out_manifest` from a term CSV, or (append) add rows for the terms it does not have yet.

    `judge`: a loaded model (`transcribe(paths) -> list[str]`) that hears every new clip; rows whose carrier-word
    WER is above `options.judge_max` are not appended. None: no judging (`--no-judge`).
    """
    start = time.monotonic()
    cfg = config or FlywheelConfig()
    engines = as_engines(synthesizer)
    options = dataclasses.replace(
        options,
        sample_rate=options.sample_rate or cfg.manifest.sample_rate,
    )
    out = Path(out_manifest)
    _check_out(out)
    workers = options.workers or os.cpu_count() or 1
    old_bytes, old_rows, new_terms, present, tiers = _prepare(terms_csv, out, options, engines, cfg, append, workers)
    version_before = content_hash(old_rows) if old_bytes else None
    utts = plan(new_terms, _spec(options, engines), tiers)
    base_dir = out.resolve().parent
    rendered = Rendered()
    if utts:
        babble = _babble(utts, engines, options, base_dir)
        rendered = render_and_judge(utts, engines, babble, options, base_dir, workers, progress, judge)
    new_rows, judged = rendered.rows, None
    if judge is not None and utts:
        new_rows, judged = split_rejects(rendered, options, out, getattr(judge, "name", "judge"))
    out.parent.mkdir(parents=True, exist_ok=True)
    version = _write_manifest(out, old_bytes, new_rows, cfg) if new_rows else version_before
    errors = [abs(r["snr_db"] - parse_noise_label(r["noise_level"])) for r in new_rows if r["snr_db"] is not None]
    return BuildReport(
        manifest=out,
        rows_added=len(new_rows),
        rows_total=len(old_rows) + len(new_rows),
        version_before=version_before,
        version=version or "",
        terms_added=[t.term for t in new_terms],
        terms_present=present,
        terms_without_rows=sorted({r["term"] for r in rendered.rows} - {r["term"] for r in new_rows}),
        by_ipa_source=dict(Counter(r["ipa_source"] for r in new_rows)),
        by_noise_kind=dict(Counter(r["noise_kind"] or CLEAN for r in new_rows)),
        by_voice=dict(Counter(r["voice_id"] for r in new_rows)),
        max_snr_error_db=round(max(errors), 3) if errors else None,
        judge=judged,
        synthesis_seconds=round(rendered.synthesis_seconds, 2),
        seconds=round(time.monotonic() - start, 2),
    )
