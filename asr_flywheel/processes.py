"""Whether a process still runs: the one liveness check every pid file and lock holder in the flywheel uses."""

from __future__ import annotations

import os
from pathlib import Path


def alive(pid: int) -> bool:
    """True while `pid` runs. A zombie (exited, not yet reaped by its parent) is not running: `kill(pid, 0)` alone
    would say it is, so a server killed under a still-running parent would look alive forever."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: it exists
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True  # no /proc (not Linux): kill(pid, 0) is all there is
    return state != "Z"
