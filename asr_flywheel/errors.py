"""Error types that carry every problem at once, so users fix a manifest in one pass."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with user input. `line` is 1-based (0 for file-level problems)."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else "file"
        return f"{where}: {self.field}: {self.reason}"

    def to_dict(self) -> dict:
        return asdict(self)


class FlywheelError(Exception):
    """Base for errors the CLI reports without a traceback."""

    exit_code = 1


class InputError(FlywheelError):
    """Bad user input. Carries every problem found, never just the first (exit code 2)."""

    exit_code = 2

    def __init__(self, summary: str, problems: list[Problem] | None = None):
        self.summary = summary
        self.problems = sorted(problems or [])
        super().__init__(self.render())

    def render(self, limit: int | None = None) -> str:
        lines = [self.summary]
        shown = self.problems if limit is None else self.problems[:limit]
        lines += [f"  {p}" for p in shown]
        if limit is not None and len(self.problems) > limit:
            lines.append(f"  ... and {len(self.problems) - limit} more")
        return "\n".join(lines)


class RefusedError(FlywheelError):
    """A request that is well-formed but known to be harmful (e.g. SFT of a base that collapses)."""

    exit_code = 2
