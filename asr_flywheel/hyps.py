"""Hypotheses files: one `{"audio_filepath": ..., "hyp": ...}` per line, matched to manifest rows by audio.

Every mismatch is an error listing all offenders: a manifest row without a hypothesis would silently
shrink the denominator, and a hypothesis without a row usually means the wrong manifest was passed.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest, resolve_audio_path


def read_hyps(path: str | Path) -> dict[str, str]:
    """Read a hypotheses file into {resolved audio path: hyp}. Relative paths resolve against its dir."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"hypotheses file not found: {p}") from None
    base = str(p.resolve().parent)
    problems: list[Problem] = []
    out: dict[str, str] = {}
    seen: dict[str, int] = {}
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()
    for i, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            problems.append(Problem(i, "(line)", "blank line"))
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(i, "(json)", f"malformed JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(i, "(json)", "expected a JSON object"))
            continue
        af, hyp = obj.get("audio_filepath"), obj.get("hyp")
        if not isinstance(af, str) or not af.strip():
            problems.append(Problem(i, "audio_filepath", "missing or not a non-empty string"))
            continue
        if not isinstance(hyp, str):
            problems.append(
                Problem(i, "hyp", f'missing or not a string (an empty transcript is ""), got {hyp!r}'[:200])
            )
            continue
        audio = resolve_audio_path(af, base)
        if audio in seen:
            problems.append(Problem(i, "audio_filepath", f"duplicate hypothesis: same audio as line {seen[audio]}"))
            continue
        seen[audio] = i
        out[audio] = hyp
    if problems:
        raise InputError(f"{p}: {len(problems)} problem(s) in the hypotheses file", problems)
    return out


def align_hyps(manifest: Manifest, hyps: dict[str, str], *, hyps_name: str = "hypotheses") -> list[str]:
    """Hypotheses in manifest row order; raises listing every unmatched row and every orphan hypothesis."""
    problems = [
        Problem(line, "audio_filepath", f"no hypothesis for this row in {hyps_name}")
        for line, audio in zip(manifest.lines, manifest.audio_paths, strict=True)
        if audio not in hyps
    ]
    rows = set(manifest.audio_paths)
    orphans = [a for a in hyps if a not in rows]
    problems += [Problem(0, "hyp", f"hypothesis has no manifest row: {a}") for a in orphans]
    if problems:
        raise InputError(
            f"hypotheses do not match {manifest.path}: {len(problems) - len(orphans)} row(s) without a hypothesis, "
            f"{len(orphans)} hypothesis(es) without a row",
            problems,
        )
    return [hyps[a] for a in manifest.audio_paths]
