"""Error types that carry every problem at once, so users fix a manifest in one pass.

Every problem is kept, but a terminal shows only the first `TERMINAL_LIMIT` plus a count: 200k missing audio
files must not print 200k lines. The full list goes to `--json` or a file (`io.write_problems`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

#: Problems printed to a terminal before the rest are summarised as a count.
TERMINAL_LIMIT = 50


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with user input. `line` is 1-based (0 for file-level problems)."""

    line: int
    field: str
    reason: str

    def __str__(self) -> str:
        where = f"line {self.line}" if self.line else ("command line" if self.field.startswith("--") else "file")
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
        super().__init__(self.render(TERMINAL_LIMIT))

    def render(self, limit: int | None = None, *, full_list_hint: str = "") -> str:
        """Summary plus problems; with `limit`, the first `limit` and a count of the rest (and where to get them)."""
        lines = [self.summary]
        shown = self.problems if limit is None else self.problems[:limit]
        lines += [f"  {p}" for p in shown]
        if limit is not None and len(self.problems) > limit:
            more = f"  ... and {len(self.problems) - limit} more ({len(self.problems)} in all)"
            lines.append(f"{more}; {full_list_hint}" if full_list_hint else more)
        return "\n".join(lines)

    def render_terminal(self, full_list_hint: str = "rerun with --json for the full list") -> str:
        """What a CLI prints to stderr: at most TERMINAL_LIMIT problems, then a count and where the rest are."""
        return self.render(TERMINAL_LIMIT, full_list_hint=full_list_hint)


class RefusedError(FlywheelError):
    """A request that is well-formed but known to be harmful (e.g. SFT of a base that collapses)."""

    exit_code = 2
