"""Output of the GPU checks: a tee of stdout/stderr into the log file, timestamps, the summary record."""

from __future__ import annotations

import contextlib
import time

T0 = time.time()
#: Everything measured; written to gpu_summary.json and condensed into the last stdout line.
SUMMARY: dict = {"status": {}}


class Tee:
    """Writes to the console stream and the log file."""

    def __init__(self, stream, fh):
        self.stream, self.fh = stream, fh

    def write(self, s):
        self.stream.write(s)
        with contextlib.suppress(ValueError):  # log file already closed at interpreter exit
            self.fh.write(s)
        return len(s)

    def flush(self):
        self.stream.flush()
        with contextlib.suppress(ValueError):
            self.fh.flush()

    def isatty(self):
        return False

    def fileno(self):
        return self.stream.fileno()


def log(msg: str) -> None:
    print(f"[{time.time() - T0:6.1f}s] {msg}", flush=True)


def section(title: str) -> None:
    print(f"\n{'=' * 20} {title} {'=' * 20}", flush=True)


def fnum(v):
    try:
        return float(v.detach().float().cpu()) if hasattr(v, "detach") else float(v)
    except Exception:
        return str(v)
