"""Build or grow a manifest by synthesis (SPEC §12): check everything, synthesise in parallel, append atomically.

Order matters for the rules: every input problem (bad term lines, unknown voices, unusable pronunciations) is
collected before any audio is made; WAVs are written before the manifest, and the manifest is replaced in one
rename after the new version passes validation. Existing rows are copied byte for byte, so growth never
rewrites them, and their WAVs are never touched.

The synthesizer is passed in (core does not look up plugins). Optional synthesizer methods the build uses when
present: `check_voice(voice)`, `unspeakable(text, voice)`, `check_pronunciation(p)` (each returns a reason or
None), and attributes `g2p_source` (the `ipa_source` of its own g2p) and `babble_voices`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, cast

from asr_flywheel.build.noise import CLEAN, parse_noise_label
from asr_flywheel.build.options import BuildOptions, BuildReport
from asr_flywheel.build.plan import PlanSpec, Utterance, plan
from asr_flywheel.build.render import BuildError, accepts_pronunciations, make_babble, render
from asr_flywheel.build.terms import TermSpec, read_pronunciations, read_terms
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.io import jsonl_bytes
from asr_flywheel.manifest import content_hash
from asr_flywheel.normalize import normalize
from asr_flywheel.validation import validate_manifest


def _existing(out: Path, append: bool, cfg: FlywheelConfig) -> tuple[bytes, list[dict]]:
    if not out.exists():
        return b"", []
    if not append:
        raise InputError(f"{out} exists: pass --append to grow it (existing rows are kept as they are)")
    report = validate_manifest(out, cfg, check_audio=True)  # grow only a manifest a cycle would accept
    report.raise_if_invalid()
    return out.read_bytes(), report.manifest.rows


def _speech_problems(terms: list[TermSpec], options: BuildOptions, synth, workers: int) -> list[Problem]:
    """Voices that do not exist, and (term, voice) pairs the synthesizer says it cannot speak."""
    problems = []
    check_voice = getattr(synth, "check_voice", None)
    bad_voices = set()
    for voice in options.voices:
        why = check_voice(voice) if check_voice else None
        if why:
            bad_voices.add(voice)
            problems.append(Problem(0, "voices", f"{voice!r}: {why}"))
    unspeakable = getattr(synth, "unspeakable", None)
    if unspeakable is None:
        return problems
    pairs = [(t, v) for t in terms for v in options.voices if v not in bad_voices]
    with ThreadPoolExecutor(workers) as pool:
        reasons = list(pool.map(lambda tv: unspeakable(tv[0].term, tv[1]), pairs))
    for (term, voice), why in zip(pairs, reasons, strict=True):
        if why:
            problems.append(Problem(term.line, "term", f"voice {voice!r} cannot speak {term.term!r}: {why}"))
    return problems


def _pronunciation_problems(tiers: list[dict], terms: list[TermSpec], synth) -> list[Problem]:
    """Pronunciations the new terms will use that the synthesizer cannot take (reported on the term's line)."""
    used = []
    for t in terms:
        pron = next((tier[t.key] for tier in tiers if t.key in tier), None)
        if pron is not None:
            used.append((t, pron))
    if used and not accepts_pronunciations(synth):
        return [Problem(0, "synthesizer", f"{synth.name} takes no phoneme input (pronunciations=)")]
    check: Callable[[Any], str | None] | None = getattr(synth, "check_pronunciation", None)
    problems = []
    for t, pron in used if check else []:
        why = cast(Callable[[Any], str | None], check)(pron)
        if why:
            problems.append(Problem(t.line, "term", f"{pron.source} pronunciation of {t.term!r} unusable: {why}"))
    return problems


def _tiers(options: BuildOptions) -> tuple[list[dict], list[Problem]]:
    tiers, problems = [], []
    for path, source in ((options.overrides, "override"), (options.lexicon, "lexicon")):
        found, probs = read_pronunciations(path, source) if path else ({}, [])
        tiers.append(found)
        problems += probs
    return tiers, problems


def _prepare(terms_csv, out: Path, options: BuildOptions, synth, cfg, append: bool, workers: int):
    """Everything checked up front: returns (existing bytes, existing rows, new terms, present terms, tiers)."""
    problems = options.problems()
    terms, term_problems = read_terms(terms_csv, cfg.manifest.categories)
    problems += term_problems
    tiers, pron_problems = _tiers(options)
    problems += pron_problems
    old_bytes, old_rows = _existing(out, append, cfg)
    present_keys = {normalize(str(r.get("term") or "")) for r in old_rows}
    new_terms = [t for t in terms if t.key not in present_keys]
    present = [t.term for t in terms if t.key in present_keys]
    sources = [getattr(synth, "g2p_source", "g2p")] + [
        s for s, f in (("override", options.overrides), ("lexicon", options.lexicon)) if f
    ]
    problems += [
        Problem(0, "ipa_source", f"{s!r} is not in [manifest] ipa_sources; add it there")
        for s in sources
        if s not in cfg.manifest.ipa_sources
    ]
    if not options.problems():  # the speech checks need valid voices and levels; bad terms are checked regardless
        problems += _speech_problems(new_terms, options, synth, workers)
        problems += _pronunciation_problems(tiers, new_terms, synth)
    if problems:
        raise InputError(f"{terms_csv}: {len(problems)} problem(s); nothing was built", problems)
    return old_bytes, old_rows, new_terms, present, tiers


def _check_out(out: Path) -> None:
    """The manifest and its audio folder must be writable before any clip is synthesised."""
    from asr_flywheel.cycle import require_writable_dir

    if out.is_dir():
        raise InputError(f"--out {out} is a directory; give the manifest file (JSONL) to write")
    require_writable_dir(out.parent, f"--out {out}: its folder")


def _spec(options: BuildOptions, synth) -> PlanSpec:
    return PlanSpec(
        contexts=options.contexts,
        voices=options.voices,
        noise=options.noise,
        noise_kinds=options.noise_kinds,
        rows_per_term=options.rows_per_term,
        seed=options.seed,
        synthesizer=synth.name,
        g2p_source=getattr(synth, "g2p_source", "g2p"),
        audio_dir=options.audio_dir.strip("/") or ".",
    )


def _render_all(utts: list[Utterance], synth, options: BuildOptions, base_dir: Path, workers: int, progress):
    needs_babble = any(r.noise_kind == "babble" for u in utts for r in u.rows)
    babble = None
    if needs_babble:
        voices = options.babble_voices or _other_voices(getattr(synth, "babble_voices", None), options.voices)
        if len(voices) < 2:
            raise InputError("babble noise needs at least two babble voices (--babble-voices)")
        (base_dir / options.audio_dir).mkdir(parents=True, exist_ok=True)
        rate = cast(int, options.sample_rate)  # filled from [manifest] before rendering
        babble = make_babble(synth, tuple(voices), base_dir / options.audio_dir, rate, options.seed)
    bar = _progress_bar(len(utts), options, progress)
    results: list[list[dict]] = []
    with ThreadPoolExecutor(workers) as pool:
        futures = [pool.submit(render, u, synth, babble, base_dir, cast(int, options.sample_rate)) for u in utts]
        try:
            for fut in futures:
                results.append(fut.result())
                bar(len(results), len(utts))
        except BaseException:
            for f in futures:
                f.cancel()
            raise
    return [row for rows in results for row in rows]


def _other_voices(candidates: tuple[str, ...] | None, row_voices: tuple[str, ...], talkers: int = 4):
    """Babble talkers: the synthesizer's candidates that do not speak the rows (when at least two remain)."""
    if not candidates:
        return row_voices
    others = [v for v in candidates if v not in row_voices]
    return tuple(others[:talkers]) if len(others) >= 2 else tuple(candidates[:talkers])


def _progress_bar(total: int, options: BuildOptions, progress):
    if progress is not None:
        return progress
    if not options.progress:
        return lambda done, total: None
    from tqdm import tqdm

    bar = tqdm(total=total, unit="clip", desc="synthesising", file=sys.stderr, dynamic_ncols=True)

    def update(done: int, total: int) -> None:
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return update


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
) -> BuildReport:
    """Build `out_manifest` from a term CSV, or (append) add rows for the terms it does not have yet."""
    start = time.monotonic()
    cfg = config or FlywheelConfig()
    if options.sample_rate is None:
        options = dataclasses.replace(options, sample_rate=cfg.manifest.sample_rate)
    out = Path(out_manifest)
    _check_out(out)
    workers = options.workers or os.cpu_count() or 1
    old_bytes, old_rows, new_terms, present, tiers = _prepare(
        terms_csv, out, options, synthesizer, cfg, append, workers
    )
    version_before = content_hash(old_rows) if old_bytes else None
    utts = plan(new_terms, _spec(options, synthesizer), tiers)
    new_rows = _render_all(utts, synthesizer, options, out.resolve().parent, workers, progress) if utts else []
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
        by_ipa_source=dict(Counter(r["ipa_source"] for r in new_rows)),
        by_noise_kind=dict(Counter(r["noise_kind"] or CLEAN for r in new_rows)),
        max_snr_error_db=round(max(errors), 3) if errors else None,
        seconds=round(time.monotonic() - start, 2),
    )
