"""Pre-flight manifest validation: every bad row, at once, before any compute is spent (docs/design.md#manifest).

`validate_manifest` never stops at the first problem and never drops a row: a row is either valid or
named in a `Problem` with its line number, field and reason. `load_manifest` is the entry point every
command uses: it raises `InputError` listing all problems, or returns the `Manifest`.
"""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import orjson

from asr_flywheel.audio import AudioInfo, AudioProblem, read_info
from asr_flywheel.config import FlywheelConfig, ManifestConfig
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.manifest import Manifest, resolve_audio_path
from asr_flywheel.metrics import terms_found
from asr_flywheel.normalize import normalize_many

# C0/C1 controls, DEL, the BOM / zero-width no-break space, and U+FFFD (evidence of a lossy decode upstream).
_BAD_CHARS = re.compile("[\x00-\x1f\x7f-\x9f\ufeff\ufffd]")
_OPTIONAL_STRINGS = ("voice_id", "noise_level", "context_type")
_BOM = b"\xef\xbb\xbf"


@dataclass
class ValidationReport:
    manifest: Manifest
    problems: list[Problem] = field(default_factory=list)
    audio: dict[str, AudioInfo] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.problems

    def raise_if_invalid(self) -> Manifest:
        if self.problems:
            n_rows = len({p.line for p in self.problems if p.line})
            raise InputError(
                f"{self.manifest.path}: {len(self.problems)} problem(s) in {n_rows} row(s); nothing was run",
                self.problems,
            )
        return self.manifest


def _describe_char(ch: str) -> str:
    names = {"\ufeff": "byte-order mark U+FEFF", "\ufffd": "replacement character U+FFFD (lossy decode)"}
    return names.get(ch, f"control character U+{ord(ch):04X}")


def _check_string(row: dict, key: str, line: int, problems: list[Problem], *, required: bool) -> str | None:
    if key not in row or row[key] is None:
        if required:
            problems.append(Problem(line, key, "missing required field"))
        return None
    value = row[key]
    if not isinstance(value, str):
        problems.append(Problem(line, key, f"expected a string, got {type(value).__name__} {value!r}"[:200]))
        return None
    if not value.strip():
        problems.append(Problem(line, key, "must not be empty"))
        return None
    bad = _BAD_CHARS.search(value)
    if bad:
        problems.append(Problem(line, key, f"contains {_describe_char(bad.group())} at position {bad.start()}"))
        return None
    return value


def _parse_lines(data: bytes, problems: list[Problem]) -> tuple[list[dict], list[int]]:
    rows: list[dict] = []
    lines: list[int] = []
    raw_lines = data.split(b"\n")
    if raw_lines and raw_lines[-1] == b"":
        raw_lines.pop()  # a final newline terminates the last row; it is not an empty row
    for i, raw in enumerate(raw_lines, start=1):
        if raw.startswith(_BOM):
            where = "file starts" if i == 1 else "line starts (were files concatenated?)"
            problems.append(
                Problem(i, "(encoding)", f"{where} with a UTF-8 byte-order mark (BOM); save as UTF-8 without BOM")
            )
            raw = raw[len(_BOM) :]
        if not raw.strip():
            problems.append(Problem(i, "(line)", "blank line; remove it (every line must be one JSON object)"))
            continue
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            problems.append(
                Problem(i, "(encoding)", f"not valid UTF-8 (byte {exc.start}: {raw[exc.start : exc.start + 1]!r})")
            )
            continue
        try:
            obj = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            problems.append(Problem(i, "(json)", f"malformed JSON: {exc}"))
            continue
        if not isinstance(obj, dict):
            problems.append(Problem(i, "(json)", f"expected a JSON object, got {type(obj).__name__}"))
            continue
        rows.append(obj)
        lines.append(i)
    return rows, lines


def _check_row(row: dict, line: int, cfg: ManifestConfig, problems: list[Problem]) -> tuple[str | None, str | None]:
    """Field checks that need no normalisation. Returns (text, term) when they are usable strings."""
    _check_string(row, "audio_filepath", line, problems, required=True)
    text = _check_string(row, "text", line, problems, required=True)
    duration = row.get("duration")
    if duration is not None:
        if isinstance(duration, bool) or not isinstance(duration, int | float):
            problems.append(Problem(line, "duration", f"expected seconds as a number or null, got {duration!r}"[:200]))
        elif duration <= 0:
            problems.append(Problem(line, "duration", f"must be > 0 seconds, got {duration}"))
    term = _check_string(row, "term", line, problems, required=False)
    category = _check_string(row, "entity_category", line, problems, required=False)
    has_term, has_cat = row.get("term") is not None, row.get("entity_category") is not None
    if has_term and not has_cat:
        problems.append(Problem(line, "entity_category", "required when `term` is set (KER is reported per category)"))
    if has_cat and not has_term:
        problems.append(Problem(line, "term", "required when `entity_category` is set"))
    if category is not None and category not in cfg.categories:
        problems.append(
            Problem(
                line,
                "entity_category",
                f"unknown category {category!r} (allowed: {', '.join(cfg.categories)}; "
                "extend manifest.categories in the configuration)",
            )
        )
    source = _check_string(row, "ipa_source", line, problems, required=False)
    if source is not None and source not in cfg.ipa_sources:
        problems.append(
            Problem(line, "ipa_source", f"unknown source {source!r} (allowed: {', '.join(cfg.ipa_sources)})")
        )
    for key in _OPTIONAL_STRINGS:
        _check_string(row, key, line, problems, required=False)
    return text, term


def _check_audio(
    manifest: Manifest, valid_paths: list[tuple[int, str, object]], cfg: ManifestConfig, problems: list[Problem]
) -> dict[str, AudioInfo]:
    infos: dict[str, AudioInfo] = {}

    def probe(path: str) -> AudioInfo | AudioProblem:
        try:
            return read_info(path)
        except AudioProblem as exc:
            return exc

    unique = list(dict.fromkeys(p for _, p, _ in valid_paths))
    workers = max(1, min(cfg.audio_check_workers, len(unique)))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = dict(zip(unique, pool.map(probe, unique), strict=True))
    for line, path, duration in valid_paths:
        res = results[path]
        if isinstance(res, AudioProblem):
            problems.append(Problem(line, "audio_filepath", str(res)))
            continue
        infos[path] = res
        if res.samplerate != cfg.sample_rate and not cfg.resample:
            problems.append(
                Problem(
                    line,
                    "audio_filepath",
                    f"sample rate {res.samplerate} Hz, expected {cfg.sample_rate} Hz "
                    "(convert the file, or set manifest.resample = true to resample on load)",
                )
            )
        if res.channels != cfg.channels and not cfg.downmix:
            problems.append(
                Problem(
                    line,
                    "audio_filepath",
                    f"{res.channels} channels, expected {cfg.channels} "
                    "(convert the file, or set manifest.downmix = true to downmix on load)",
                )
            )
        numeric = isinstance(duration, int | float) and not isinstance(duration, bool) and duration > 0
        if numeric and abs(cast(float, duration) - res.duration) > cfg.duration_tolerance_s:
            problems.append(
                Problem(line, "duration", f"{duration} s disagrees with the audio header ({res.duration:.3f} s)")
            )
    return infos


def validate_manifest(
    path: str | Path, config: FlywheelConfig | None = None, *, check_audio: bool = True
) -> ValidationReport:
    """Validate a manifest file; see the module docstring. Never raises for bad content."""
    cfg = (config or FlywheelConfig()).manifest
    p = Path(path)
    problems: list[Problem] = []
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise InputError(f"manifest not found: {p}") from None
    except IsADirectoryError:
        raise InputError(f"manifest path is a directory, expected a JSONL file: {p}") from None
    rows, lines = _parse_lines(data, problems)
    if not rows and not problems:
        problems.append(Problem(0, "(file)", "manifest has no rows"))
    base_dir = str(p.resolve().parent)

    texts: list[tuple[int, str, str | None]] = []  # (row index, text, term) for the term-in-text check
    audio_paths: list[str] = []
    for idx, (row, line) in enumerate(zip(rows, lines, strict=True)):
        text, term = _check_row(row, line, cfg, problems)
        af = row.get("audio_filepath")
        audio_paths.append(resolve_audio_path(af, base_dir) if isinstance(af, str) and af.strip() else "")
        if text is not None:
            texts.append((idx, text, term))

    # Normalisation-dependent checks, vectorised over all rows.
    norm_text = normalize_many([t for _, t, _ in texts])
    with_terms = [(k, term) for k, (_, _, term) in enumerate(texts) if term is not None]
    norm_terms = dict(zip((k for k, _ in with_terms), normalize_many([t for _, t in with_terms]), strict=True))
    keys = list(norm_terms)
    found = dict(
        zip(keys, terms_found([norm_terms[k] for k in keys], [norm_text[k] for k in keys]).tolist(), strict=True)
    )
    for k, (idx, _text, term) in enumerate(texts):
        line = lines[idx]
        if not norm_text[k]:
            problems.append(Problem(line, "text", "has no words after normalisation (only punctuation or artefacts)"))
            continue
        if term is None:
            continue
        nt = norm_terms[k]
        if not nt:
            problems.append(Problem(line, "term", "has no words after normalisation"))
        elif not found[k]:
            problems.append(
                Problem(line, "term", f"{term!r} does not occur in `text` (normalised, as contiguous words)")
            )

    first_seen: dict[str, int] = {}
    for idx, audio in enumerate(audio_paths):
        if not audio:
            continue
        if audio in first_seen:
            problems.append(
                Problem(lines[idx], "audio_filepath", f"duplicate row: same audio as line {first_seen[audio]}")
            )
        else:
            first_seen[audio] = lines[idx]

    manifest = Manifest(path=p, rows=rows, lines=lines, audio_paths=audio_paths)
    infos: dict[str, AudioInfo] = {}
    if check_audio:
        probe = [(lines[i], a, rows[i].get("duration")) for i, a in enumerate(audio_paths) if a]
        infos = _check_audio(manifest, probe, cfg, problems)
    return ValidationReport(manifest=manifest, problems=sorted(problems), audio=infos)


def load_manifest(path: str | Path, config: FlywheelConfig | None = None, *, check_audio: bool = True) -> Manifest:
    """Validate and return the manifest, or raise InputError naming every problem."""
    return validate_manifest(path, config, check_audio=check_audio).raise_if_invalid()


def load_manifest_version(
    path: str | Path, version: str, rows: int, config: FlywheelConfig | None = None, *, check_audio: bool = True
) -> ValidationReport:
    """The manifest as it was at `version`: its first `rows` rows, verified against the content hash.

    Manifests only ever grow by appending, so a version stays readable while later rows are added; a cycle
    reads exactly what it claimed even if the file grows under it. Problems in rows appended later do not
    concern this version and are not reported here.
    """
    report = validate_manifest(path, config, check_audio=check_audio)
    m = report.manifest
    if len(m) < rows:
        raise InputError(f"{path} has {len(m)} valid-looking rows, fewer than the {rows} of version {version[:12]}")
    last_line = m.lines[rows - 1]
    problems = [p for p in report.problems if p.line <= last_line]
    if problems:
        raise InputError(f"{path}: {len(problems)} problem(s) in the first {rows} rows; nothing was run", problems)
    prefix = m.subset(list(range(rows)))
    if prefix.version != version:
        raise InputError(
            f"{path} was rewritten, not appended: its first {rows} rows no longer hash to version {version[:12]} "
            f"(now {prefix.version[:12]}). Manifests must only grow by appending rows."
        )
    keep = set(prefix.audio_paths)
    return ValidationReport(manifest=prefix, audio={a: i for a, i in report.audio.items() if a in keep})
