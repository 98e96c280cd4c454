"""Hypotheses files: one `{"audio_filepath": ..., "hyp": ...}` per line, matched to manifest rows by audio.

NeMo's `transcribe_speech.py` writes `pred_text` instead of `hyp`; both keys are accepted. Relative audio
paths resolve against the hypotheses file's directory; when that matches no manifest row but the manifest's
directory does (a hyps file written elsewhere with the manifest's own relative paths), the manifest's
directory is used, and every mismatch message says which base was used.

Every mismatch is an error listing all offenders: a manifest row without a hypothesis would silently
shrink the denominator, and a hypothesis without a row usually means the wrong manifest was passed.
"""

from __future__ import annotations

from pathlib import Path

import orjson

from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest, resolve_audio_path

HYP_KEYS = ("hyp", "pred_text")


def read_hyps(path: str | Path, base_dir: str | None = None) -> dict[str, str]:
    """Read a hypotheses file into {resolved audio path: hyp}. Relative paths resolve against `base_dir`,
    by default the file's own directory."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"hypotheses file not found: {p}") from None
    except IsADirectoryError:
        raise InputError(f"hypotheses path is a directory, expected a JSONL file: {p}") from None
    base = base_dir or str(p.resolve().parent)
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
        af = obj.get("audio_filepath")
        key = next((k for k in HYP_KEYS if k in obj), "hyp")
        hyp = obj.get(key)
        if not isinstance(af, str) or not af.strip():
            problems.append(Problem(i, "audio_filepath", "missing or not a non-empty string"))
            continue
        if not isinstance(hyp, str):
            problems.append(
                Problem(
                    i, key, f'missing or not a string (`hyp` or NeMo\'s `pred_text`; "" is empty), got {hyp!r}'[:200]
                )
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


def align_hyps(
    manifest: Manifest, hyps: dict[str, str], *, hyps_name: str = "hypotheses", base_note: str = ""
) -> list[str]:
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
            f"{len(orphans)} hypothesis(es) without a row{base_note}",
            problems,
        )
    return [hyps[a] for a in manifest.audio_paths]


def load_hyps(path: str | Path, manifest: Manifest) -> list[str]:
    """Read and align a hypotheses file to a manifest: what `flywheel score --hyps` uses.

    Relative paths resolve against the hyps file's directory; if fewer rows match that way than against the
    manifest's directory, the manifest's directory is used. A mismatch error names the base that was used.
    """
    p = Path(path)
    own = str(p.resolve().parent) if p.exists() else None
    hyps = read_hyps(p)
    rows = set(manifest.audio_paths)
    base = own
    if own != manifest.base_dir and sum(a in rows for a in hyps) < len(rows):
        alt = read_hyps(p, manifest.base_dir)
        if sum(a in rows for a in alt) > sum(a in rows for a in hyps):
            hyps, base = alt, manifest.base_dir
    which = (
        "the manifest's directory" if base == manifest.base_dir and base != own else "the hypotheses file's directory"
    )
    note = f" (relative hypothesis paths resolved against {which}, {base})"
    return align_hyps(manifest, hyps, hyps_name=str(p), base_note=note)
