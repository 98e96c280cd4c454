"""SIGINT and SIGTERM end a verb with a non-zero exit code and one clear line, never a silent success.

Both signals raise `Interrupted`, a BaseException that is deliberately *not* a KeyboardInterrupt: Lightning turns a
KeyboardInterrupt into `exit(1)` and its own SIGTERM handling into `SystemExit(None)` (exit 0, which a scheduler
records as success), and `except Exception` blocks in libraries must not swallow it either. The CLI maps it to the
shell's convention, 128 + signal number: 130 for SIGINT, 143 for SIGTERM. Outputs are written atomically
(`asr_flywheel.io`), so an interrupted verb leaves nothing that looks complete; training checkpoints are kept.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
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


#: Seconds an interrupted process may spend cleaning up (releasing the GPU slot, recording the failure, telling the
#: Prefect server) before it exits anyway: after a process-group Ctrl-C or `timeout` the temporary Prefect server is
#: gone too, and every API call would retry against it for minutes.
CLEANUP_GRACE_S = 15.0


def stop_temporary_prefect_server() -> None:
    """Stop the temporary Prefect servers this process started, if any: the flywheel's own (`server.temporary`)
    and Prefect's in-process ephemeral one (an exit through `os._exit` skips the atexit hook that stops it)."""
    flywheel_server = sys.modules.get("asr_flywheel.flows.server")
    if flywheel_server is not None and flywheel_server._TEMPORARY:
        if "prefect.logging.handlers" in sys.modules:  # send what is queued while the server still listens
            from prefect.events.worker import EventsWorker
            from prefect.logging.handlers import APILogWorker

            with contextlib.suppress(Exception):
                APILogWorker.drain_all(timeout=5)
                EventsWorker.drain_all(timeout=5)
        with contextlib.suppress(Exception):
            flywheel_server.stop_temporary()
    module = sys.modules.get("prefect.server.api.server")
    if module is None:
        return
    for server in list(getattr(module.SubprocessASGIServer, "_instances", {}).values()):
        with contextlib.suppress(Exception):
            server.stop()


def exit_now(signum: int, verb: str | None, why: str = "") -> None:
    """Leave at once with the signal's exit code and one line, stopping the temporary server first."""
    line = Interrupted(signum).message(verb) + (f" ({why})" if why else "")
    with contextlib.suppress(Exception):
        print(line, file=sys.stderr, flush=True)
        sys.stdout.flush()
    stop_temporary_prefect_server()
    os._exit(128 + signum)


@contextlib.contextmanager
def interrupts_raise(*, hard_exit: bool = False, verb: str | None = None) -> Iterator[Received]:
    """Install the handlers for the duration of one CLI call (restoring the previous ones, as tests call main).

    In a real process (`hard_exit`) cleanup is bounded: a second signal exits at once, and cleanup still running
    `CLEANUP_GRACE_S` after the first signal is cut short (a dead holder's GPU slot is reclaimed by the next run)."""
    received = Received()

    def handler(signum: int, _frame: object) -> None:
        if received.signum is None:
            received.signum = signum
            if hard_exit:
                timer = threading.Timer(
                    CLEANUP_GRACE_S,
                    exit_now,
                    args=(signum, verb, f"cleanup cut short after {CLEANUP_GRACE_S:.0f} s"),
                )
                timer.daemon = True
                timer.start()
        elif hard_exit:
            exit_now(received.signum, verb, "second signal")
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
