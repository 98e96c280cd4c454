"""Where a configuration came from: the file and the line of every key, so each error can point at it.

tomllib returns values without positions (and its decode errors carry them only in the message text), so this
module keeps a light scan of the file beside the parsed data.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asr_flywheel.errors import InputError, Problem


@dataclass(frozen=True)
class ConfigSource:
    """The file a configuration was read from and the line of each of its keys."""

    path: str
    #: "section.key" (or "section", or a top-level key) → 1-based line of its first appearance.
    lines: dict[str, int] = field(default_factory=dict)

    def line_of(self, key: str) -> int:
        """The key's line, else its table's line, else 0 (unknown)."""
        parts = key.split(".")
        while parts:
            line = self.lines.get(".".join(parts))
            if line:
                return line
            parts.pop()
        return 0


def line_of(source: ConfigSource | None, key: str) -> int:
    return source.line_of(key) if source else 0


_TABLE = re.compile(r"^\s*\[([^\[\]]+)\]")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-.\"' ]+?)\s*=")
_TOML_POSITION = re.compile(r"\s*\(at line (\d+), column (\d+)\)")


def _dotted(raw: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in raw.split("."))


def key_lines(text: str) -> dict[str, int]:
    """Line of every table and key in a TOML text ("section.key" → line).

    Covers what a flywheel.toml holds (tables, keys, dotted keys); a key it cannot place gets its table's line.
    """
    lines: dict[str, int] = {}
    table = ""
    for number, raw in enumerate(text.splitlines(), 1):
        if m := _TABLE.match(raw):
            table = _dotted(m.group(1))
            lines.setdefault(table, number)
        elif m := _KEY.match(raw):
            key = _dotted(m.group(1))
            lines.setdefault(f"{table}.{key}" if table else key, number)
    return lines


def read_toml(path: Path) -> tuple[dict[str, Any], ConfigSource]:
    """Parse a TOML file; a syntax error is an `InputError` naming the file, line and column."""
    try:
        text = path.read_text(encoding="utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise InputError(f"configuration file {path} is not UTF-8 text: {exc}") from None
    except OSError as exc:
        raise InputError(f"cannot read configuration file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        m = _TOML_POSITION.search(message)
        if m is None:
            raise InputError(f"configuration file {path} is not valid TOML: {message}") from None
        reason = f"{_TOML_POSITION.sub('', message)} (column {m.group(2)})"
        raise InputError(
            f"configuration file {path} is not valid TOML", [Problem(int(m.group(1)), "syntax", reason)]
        ) from None
    return data, ConfigSource(str(path), key_lines(text))
