"""Run the `tritonserver` binary shipped in the nvidia-pytriton wheel on a classic model repository.

PyTriton's own `Triton().bind()` locks the model-control API behind a token and runs once per machine, so the raw
binary is started instead, with what it was found to need on these machines: one backend directory holding the
Python backend and the stub for this interpreter, this interpreter's libpython first on LD_LIBRARY_PATH (the copied
stub loses its RPATH), this environment's `bin/` first on PATH (the stub runs the first `python3`, which must import
the flywheel and the model libraries), explicit model-control mode, loopback binding and a short exit timeout.
State (pid, ports, log) lives in `<repo>/.serve/`, which is also the server's working directory: the stub puts its
working directory on sys.path, so a directory named like a package (e.g. `triton/`) in the caller's working
directory would shadow that package inside every served model. Triton ignores `.serve` (no model has that name).
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.processes import alive

STATE_DIR = ".serve"


class ServerError(FlywheelError):
    """tritonserver could not be started, reached or stopped."""


@dataclass(frozen=True)
class ServerInfo:
    pid: int
    repo: str
    host: str
    http_port: int
    grpc_port: int
    log: str

    @property
    def http_url(self) -> str:
        return f"{self.host}:{self.http_port}"

    @property
    def grpc_url(self) -> str:
        return f"{self.host}:{self.grpc_port}"


def _pytriton_dir() -> Path:
    try:
        import pytriton
    except ImportError:
        raise ServerError("tritonserver needs the `triton` extra: pip install 'asr-flywheel[triton]'") from None
    return Path(pytriton.__file__).parent


def backend_dir(state: Path) -> Path:
    """A backends/python/ dir with libtriton_python.so, its utils module and the stub for this Python version."""
    src = _pytriton_dir() / "tritonserver"
    out = state / "backends" / "python"
    out.mkdir(parents=True, exist_ok=True)
    ver = f"{sys.version_info.major}.{sys.version_info.minor}"
    files = [
        src / "backends" / "python" / "libtriton_python.so",
        src / "backends" / "python" / "triton_python_backend_utils.py",
        src / "python_backend_stubs" / ver / "triton_python_backend_stub",
    ]
    for f in files:
        if not f.is_file():
            raise ServerError(f"the nvidia-pytriton wheel lacks {f.name} for Python {ver} ({f})")
        dest = out / f.name
        if not dest.exists() or dest.stat().st_size != f.stat().st_size:
            shutil.copy2(f, dest)
    return state / "backends"


def server_env() -> dict[str, str]:
    env = dict(os.environ)
    libs = [sysconfig.get_config_var("LIBDIR") or "", str(_pytriton_dir().parent / "nvidia_pytriton.libs")]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 2) // 2)))
    return env


def running(repo: str | os.PathLike) -> ServerInfo | None:
    """The server started for `repo`, if its process is still alive."""
    state = Path(repo) / STATE_DIR / "server.json"
    if not state.is_file():
        return None
    info = ServerInfo(**json.loads(state.read_text()))
    return info if alive(info.pid) else None


def served_models(repo: Path) -> list[str]:
    """Models of `repo` with a served version in their serving record (`flywheel_serving.json`)."""
    from asr_flywheel.backends.triton.repository import SERVING_FILE, read_state

    return sorted(p.name for p in repo.iterdir() if (p / SERVING_FILE).is_file() and read_state(p).served is not None)


def start(
    repo: str | os.PathLike,
    *,
    host: str = "127.0.0.1",
    http_port: int = 8000,
    grpc_port: int = 8001,
    timeout_s: float = 60.0,
) -> ServerInfo:
    """Start tritonserver in explicit model-control mode for `repo` (idempotent: returns the running one)."""
    repo = Path(repo).resolve()
    current = running(repo)
    if current is not None:
        return current
    state = repo / STATE_DIR
    state.mkdir(parents=True, exist_ok=True)
    binary = _pytriton_dir() / "tritonserver" / "bin" / "tritonserver"
    argv = [
        str(binary),
        f"--model-repository={repo}",
        f"--backend-directory={backend_dir(state)}",
        "--model-control-mode=explicit",
        f"--http-address={host}",
        f"--http-port={http_port}",
        f"--grpc-address={host}",
        f"--grpc-port={grpc_port}",
        "--allow-metrics=false",
        "--exit-timeout-secs=3",
        # what was served when the last server stopped (or was killed) is served again: explicit model control
        # otherwise starts with nothing loaded until a manual rollback
        *(f"--load-model={name}" for name in served_models(repo)),
        "--exit-on-error=false",  # a model that fails to load is reported by its status, not a dead server
    ]
    log = state / "tritonserver.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env=server_env(), start_new_session=True, cwd=state
        )
    info = ServerInfo(proc.pid, str(repo), host, http_port, grpc_port, str(log))
    (state / "server.json").write_text(json.dumps(asdict(info)))
    _wait_live(info, proc, timeout_s)
    return info


def _wait_live(info: ServerInfo, proc: subprocess.Popen, timeout_s: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = Path(info.log).read_text(errors="replace")[-1500:]
            raise ServerError(f"tritonserver exited with code {proc.returncode} while starting:\n{tail}")
        try:
            with urllib.request.urlopen(f"http://{info.http_url}/v2/health/live", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    stop(info.repo)
    raise ServerError(f"tritonserver did not become live within {timeout_s:.0f} s (log: {info.log})")


def stop(repo: str | os.PathLike, timeout_s: float = 20.0) -> bool:
    """SIGTERM the server's process group and wait; False when none was running."""
    info = running(repo)
    if info is None:
        return False
    try:
        os.killpg(info.pid, signal.SIGTERM)
    except ProcessLookupError:
        return True
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(info.pid, os.WNOHANG)
            if done:
                break
        except ChildProcessError:  # not our child (started by another process): poll instead
            if not alive(info.pid):
                break
        time.sleep(0.1)
    else:
        os.killpg(info.pid, signal.SIGKILL)
    (Path(repo) / STATE_DIR / "server.json").unlink(missing_ok=True)
    return True


def check_ports(http_port: int, grpc_port: int, host: str = "127.0.0.1") -> None:
    """Refuse bad or busy ports up front: tritonserver itself would start, log the clash and die a moment later."""
    bad = [f"{n} {p}" for n, p in (("--http-port", http_port), ("--grpc-port", grpc_port)) if not 0 < p < 65536]
    if http_port == grpc_port:
        bad.append("--http-port and --grpc-port must differ")
    if not bad:
        bad = [
            f"{n} {p}: {why}"
            for n, p in (("--http-port", http_port), ("--grpc-port", grpc_port))
            if (why := _bind_problem(host, p))
        ]
    if bad:
        raise InputError("invalid server ports: " + "; ".join(bad))


def _bind_problem(host: str, port: int) -> str | None:
    import socket

    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: TIME_WAIT is no clash
        try:
            sock.bind((host, port))
        except OSError as exc:
            return (
                f"already in use on {host}" if exc.errno == errno.EADDRINUSE else f"cannot bind {host}: {exc.strerror}"
            )
    return None
