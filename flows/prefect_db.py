"""A new workspace's Prefect database starts as a copy of an empty, already migrated one.

A Prefect server on a new SQLite file first runs every Alembic migration of its version; on 2 cores that is about
7 of the 20 s a fresh server takes to answer (measured: 20 s fresh, 13 s on a migrated copy). Every workspace's
first server would pay it again for the same empty schema. So the first time, `prefect server database upgrade`
migrates an empty file in the user's cache (one per Prefect version, written under a temporary name and renamed,
so a half-made template is never used), and each new workspace database starts as a copy of it. The server still
runs its migrations on start; on a copy they find nothing to do. Anything going wrong here only means the server
migrates the file itself, as it would without this.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from asr_flywheel import io as fio


def template_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "asr-flywheel" / "prefect-db"


def template(prefect_bin: str, env: dict) -> Path | None:
    """The migrated empty database of this Prefect version, made once per user cache; None if it cannot be (no
    home folder, a read-only or full cache, an upgrade that fails or takes over 2 minutes)."""
    try:
        return _template(prefect_bin, env)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return None


def _template(prefect_bin: str, env: dict) -> Path | None:
    import prefect

    path = template_dir() / f"prefect-{prefect.__version__}.db"
    _forget_abandoned(path.parent)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=".making-") as tmp:
        db = Path(tmp) / "prefect.db"
        made = subprocess.run(
            [prefect_bin, "server", "database", "upgrade", "-y"],
            env={**env, "PREFECT_HOME": tmp, "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{db}"},
            capture_output=True,
            timeout=120,
        )
        if made.returncode == 0 and db.is_file():
            os.replace(db, path)
            return path
    return None


def _forget_abandoned(folder: Path, older_than_s: float = 600.0) -> None:
    """Remove what a start killed while making the template left (SIGKILL skips the temporary folder's cleanup)."""
    import time

    for stale in folder.glob(".making-*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime > older_than_s:
                shutil.rmtree(stale)


def seed(database: Path, prefect_bin: str, env: dict) -> bool:
    """Start a workspace's missing SQLite database as a copy of the template; False leaves it to the server."""
    if database.exists():
        return False
    source = template(prefect_bin, env)
    if source is None:
        return False
    with contextlib.suppress(OSError), open(source, "rb") as src, fio.atomic_open(database, "wb") as dst:
        shutil.copyfileobj(src, dst)
        return True
    return False
