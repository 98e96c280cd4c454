"""The clinical manifest: NeMo JSONL plus the clinical extension (docs/design.md#manifest).

A `Manifest` keeps each row's JSON object exactly as written (unknown keys such as NeMo's `offset` or
`lang` survive), its 1-based line number, and the audio path resolved against the manifest's directory
(never the current working directory). Its version is the SHA-256 of the rows' canonical JSON, so
re-indenting or re-ordering keys does not make a new version, but any value change does.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path

import orjson

CLINICAL_FIELDS = ("term", "entity_category", "ipa_source", "voice_id", "noise_level", "context_type")
REQUIRED_FIELDS = ("audio_filepath", "text")


def resolve_audio_path(audio_filepath: str, base_dir: str) -> str:
    """Absolute, normalised audio path; relative paths are relative to `base_dir` (the manifest's dir)."""
    expanded = os.path.expanduser(audio_filepath)
    return os.path.normpath(expanded if os.path.isabs(expanded) else os.path.join(base_dir, expanded))


def content_hash(rows: list[dict]) -> str:
    """SHA-256 of the rows' canonical JSON (sorted keys, compact), one row per line."""
    h = hashlib.sha256()
    for row in rows:
        h.update(orjson.dumps(row, option=orjson.OPT_SORT_KEYS))
        h.update(b"\n")
    return h.hexdigest()


@dataclass
class Manifest:
    path: Path
    rows: list[dict]
    lines: list[int]
    audio_paths: list[str]
    _version: str | None = field(default=None, repr=False)
    _columns: dict[str, list] = field(default_factory=dict, repr=False)

    @property
    def base_dir(self) -> str:
        return str(self.path.resolve().parent)

    @property
    def version(self) -> str:
        if self._version is None:
            self._version = content_hash(self.rows)
        return self._version

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list:
        """One field across all rows (None where absent). Cached: rows are not mutated after loading."""
        if name not in self._columns:
            self._columns[name] = list(map(dict.get, self.rows, repeat(name)))
        return self._columns[name]

    def subset(self, indices: list[int]) -> Manifest:
        return Manifest(
            path=self.path,
            rows=[self.rows[i] for i in indices],
            lines=[self.lines[i] for i in indices],
            audio_paths=[self.audio_paths[i] for i in indices],
        )

    def resolved_rows(self, durations: dict[str, float] | None = None) -> list[dict]:
        """Rows with absolute audio paths (and `duration` filled from headers where missing)."""
        out = []
        for row, audio in zip(self.rows, self.audio_paths, strict=True):
            r = dict(row)
            r["audio_filepath"] = audio
            if durations is not None and r.get("duration") is None and audio in durations:
                r["duration"] = round(durations[audio], 4)
            out.append(r)
        return out


def append_rows(path: str | os.PathLike, rows: list[dict]) -> int:
    """Append rows to a manifest without rewriting existing ones (cycle isolation). Returns rows added.

    Uses O_APPEND in a single write so a concurrent reader sees either none or all of the new lines,
    and adds a newline first if the file does not end with one.
    """
    p = Path(path)
    payload = b"".join(orjson.dumps(r, option=orjson.OPT_APPEND_NEWLINE) for r in rows)
    if not payload:
        return 0
    fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size:
            with open(p, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    payload = b"\n" + payload
        os.write(fd, payload)
        os.fsync(fd)
    finally:
        os.close(fd)
    return len(rows)
