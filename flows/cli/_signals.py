"""SIGINT and SIGTERM end a verb with a non-zero exit code and one clear line, never a silent success.

Both signals raise `Interrupted`, a BaseException that is deliberately *not* a KeyboardInterrupt: Lightning turns a
KeyboardInterrupt into `exit(1)` and its own SIGTERM handling into `SystemExit(None)` (exit 0, which a scheduler
records as success), and `except Exception` blocks in libraries must not swallow it either. The CLI maps it to the
shell's convention, 128 + signal number: 130 for SIGINT, 143 for SIGTERM. Outputs are written atomically
(`asr_flywheel.io`), so an interrupted verb leaves nothing that looks complete; training checkpoints are kept.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass

#: Signals the CLI turns into `Interrupted`.
HANDLED = (signal.SIGINT, signal.SIGTERM)

#: What to do next, per verb, after an interruption.
NEXT_STEP = {
    "train": "rerun the same command to resume from the last epoch checkpoint",
    "cycle": "rerun the same command to resume the cycle",
}


class Interrupted(BaseException):
    """Raised in the main thread when the process receives SIGINT or SIGTERM."""

    def __init__(self, signum: int):
        self.signum = signum
        super().__init__(signal.Signals(signum).name)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum

    def message(self, verb: str | None) -> str:
        hint = NEXT_STEP.get(verb or "", "")
        name = signal.Signals(self.signum).name
        what = f"flywheel {verb}" if verb else "flywheel"
        line = f"{what}: interrupted by {name}; stopped without writing complete outputs"
        return f"{line}; {hint}" if hint else line


@dataclass
class Received:
    """The first signal received during one CLI call (libraries may replace `Interrupted` with their own error
    while cleaning up, e.g. NeMo's transcribe raising ValueError from a `finally`; the exit code must not follow)."""

    signum: int | None = None


def signal_of(exc: BaseException) -> int | None:
    """The signal an exception (or one it replaced, via __context__) stands for, if any."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, Interrupted):
            return seen.signum
        if isinstance(seen, KeyboardInterrupt):
            return signal.SIGINT
        if type(seen).__name__ == "SIGTERMException":  # Lightning's own SIGTERM path (a SystemExit with code 0)
            return signal.SIGTERM
        seen = seen.__cause__ or seen.__context__
    return None


@contextlib.contextmanager
def interrupts_raise() -> Iterator[Received]:
    """Install the handlers for the duration of one CLI call (restoring the previous ones, as tests call main)."""
    received = Received()

    def handler(signum: int, _frame: object) -> None:
        if received.signum is None:
            received.signum = signum
        raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield received
        return
    previous = {s: signal.signal(s, handler) for s in HANDLED}
    try:
        yield received
    finally:
        for s, old in previous.items():
            signal.signal(s, old)
