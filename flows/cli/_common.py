"""What every verb group shares: configuration loading, problem printing, progress and Prefect defaults."""

from __future__ import annotations

import json
import os
import sys
import tempfile

from asr_flywheel import io as fio
from asr_flywheel.config import FlywheelConfig, load_config
from asr_flywheel.errors import TERMINAL_LIMIT, InputError
from asr_flywheel.secrets import redact


def config_from(args) -> FlywheelConfig:
    return load_config(getattr(args, "config", None))


def print_problems(err: InputError, as_json: bool, *, json_flag: bool = True) -> None:
    """Every problem as JSON on stdout (--json); the first TERMINAL_LIMIT on stderr, the full list in a file."""
    if as_json:
        print(json.dumps([p.to_dict() for p in err.problems], ensure_ascii=False, indent=2))
    hint = ""
    if len(err.problems) > TERMINAL_LIMIT:
        fd, name = tempfile.mkstemp(prefix="flywheel-problems-", suffix=".jsonl")
        os.close(fd)
        hint = f"full list in {fio.write_problems(err, name)}" + ("" if as_json or not json_flag else " or with --json")
    print(redact(err.render(TERMINAL_LIMIT, full_list_hint=hint)), file=sys.stderr)


def overrides(args) -> dict:
    """Hyperparameter overrides from the named flags and repeated `--set key=value` (values parsed as JSON)."""
    hp = {
        k: getattr(args, k)
        for k in ("epochs", "lr", "batch_size", "precision", "warmup_steps")
        if getattr(args, k, None) is not None
    }
    for item in args.set or []:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InputError(f"--set expects key=value, got {item!r}")
        try:
            hp[key] = json.loads(raw)
        except json.JSONDecodeError:
            hp[key] = raw
    return hp


def progress_bar(label: str):
    def update(done: int, total: int) -> None:
        width = 30
        filled = int(width * done / max(total, 1))
        print(f"\r{label} [{'#' * filled}{'.' * (width - filled)}] {done}/{total}", end="", file=sys.stderr, flush=True)
        if done >= total:
            print(file=sys.stderr)

    return update


#: CPU numerics the demo pins so that its numbers do not depend on the host's CPU (measured here: the thread count,
#: PyTorch's kernel level, oneDNN's ISA and MKL's code path each change the trained weights; see README,
#: "Reproducible numbers"). AVX2 is the common level of today's x86-64 servers; a user's own variables win.
PINNED_CPU_NUMERICS = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_CBWR": "AVX2",
    "OMP_NUM_THREADS": "2",
    "MKL_NUM_THREADS": "2",
}


def pin_cpu_numerics() -> None:
    """Set `PINNED_CPU_NUMERICS` (before torch is imported: they are read when it loads)."""
    for name, value in PINNED_CPU_NUMERICS.items():
        os.environ.setdefault(name, value)


def _api_url_set() -> bool:
    """A server is already chosen: by the environment, or by settings in this process (a test, an embedding app)."""
    if os.environ.get("PREFECT_API_URL"):
        return True
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        return bool(get_current_settings().api.url)
    return False


def prefect_env_defaults(workspace: str | os.PathLike | None = None, *, home: str | os.PathLike | None = None) -> None:
    """Settings Prefect reads at import time: offline-friendly and patient with a cold ephemeral server; leases on
    disk and flow-run heartbeats (so a dead GPU-slot holder is found, `flows.gpu_slot`).

    With a `workspace` and no `PREFECT_API_URL`, the workspace owns its Prefect state: its `flywheel server up`
    server when one runs, else a server started for this command on `<workspace>/prefect` (`server.temporary`;
    stopped when the command ends), so `flywheel server up` afterwards lists these runs. An explicit
    `PREFECT_HOME` or `PREFECT_API_URL` wins."""
    from asr_flywheel.flows.gpu_slot import HEARTBEAT_S, LEASE_STORAGE

    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_CONCURRENCY_LEASE_STORAGE", LEASE_STORAGE)
    os.environ.setdefault("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", str(HEARTBEAT_S))
    if (workspace is not None or home is not None) and not _api_url_set():
        from pathlib import Path

        from asr_flywheel.flows import server

        if "PREFECT_HOME" in os.environ:  # an explicit home is the user's: a temporary server of Prefect's own
            return
        if "prefect.settings" in sys.modules:  # Prefect already read its settings in this process (an embedding
            return  # application or a test calling `main`): a URL set now would not be seen
        own = Path(home or Path(workspace or ".") / "prefect").expanduser().resolve()
        current = server.temporary(own)
        os.environ["PREFECT_HOME"] = str(own)
        os.environ["PREFECT_API_URL"] = current.api_url


def ensure_prefect_server() -> None:
    """Start the server `prefect_env_defaults` planned for this command (after its input checks passed: bad input
    exits 2 without starting anything)."""
    from asr_flywheel.flows import server

    if server._PLANNED:
        home = server._PLANNED[-1].home
        print(f"Prefect: starting a server on {home} for this command (stopped when it ends) ...", file=sys.stderr)
        server.start_planned()
