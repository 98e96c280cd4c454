"""Ship a model to a running tritonserver: version N+1, loaded through the model-control API, or nothing changes.

The old version keeps answering while the new one loads (Triton swaps only once the new version is ready). When
the new version fails to load, config.pbtxt is restored and the previous version reloaded if Triton dropped it, so
a failed deploy never leaves the name unserved.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

from asr_flywheel.backends.triton import repository as repo_mod
from asr_flywheel.backends.triton.client import CONTROL_TIMEOUT_S, Endpoint, connect, parse_host_port
from asr_flywheel.boost import BoostList
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.plugins.contracts import Decoder, DeployRecord


class DeployError(FlywheelError):
    """A version did not become ready; the previous version keeps serving."""


@dataclass(frozen=True)
class TritonTarget:
    repo: Path
    url: str
    name: str
    protocol: str = "http"

    def endpoint(self, version: int | None = None) -> Endpoint:
        host, port = parse_host_port(self.url)
        return Endpoint(self.protocol, host, port, self.name, str(version) if version else "")


def _activate(target: TritonTarget, info: repo_mod.VersionInfo, opts: repo_mod.ServingOptions, action: str) -> float:
    """Pin `info.version` in config.pbtxt, load it and wait until ready; restore the previous state on failure."""
    mdir = repo_mod.model_dir(target.repo, target.name)
    config = mdir / "config.pbtxt"
    old_config = config.read_text() if config.is_file() else None
    state = repo_mod.read_state(mdir)
    repo_mod.write_config(mdir, info, opts)
    client = connect(target.url, target.protocol, CONTROL_TIMEOUT_S)
    started = time.monotonic()
    try:
        try:
            client.load_model(target.name)
            if not client.is_model_ready(target.name, str(info.version)):
                raise DeployError(f"version {info.version} loaded but is not ready")
        except Exception as exc:
            _restore(client, target, config, old_config, state)
            keeps = f"version {state.served} keeps serving" if state.served else "nothing was serving before"
            raise DeployError(
                f"{action} of {target.name} version {info.version} failed: {_reason(exc)}; {keeps}"
            ) from None
    finally:
        client.close()
    state.served = info.version
    state.options = asdict(opts)
    state.history.append({"action": action, "version": info.version, "at": time.strftime("%Y-%m-%dT%H:%M:%S%z")})
    repo_mod.write_state(mdir, state)
    return time.monotonic() - started


def _require_live(target: TritonTarget, previous: int | None) -> None:
    """No server, no new version: a version directory written for a server that never loaded it would later be
    offered as a rollback target."""
    client = connect(target.url, target.protocol, CONTROL_TIMEOUT_S)
    try:
        live = client.is_server_live()
    except Exception as exc:
        live, why = False, _reason(exc)
    else:
        why = "not live"
    finally:
        client.close()
    if not live:
        before = f"version {previous} was served before" if previous else "nothing was serving before"
        raise DeployError(f"no Triton server answering at {target.url} ({why}); {before}; nothing was written")


def _reason(exc: Exception) -> str:
    text = getattr(exc, "message", None)
    text = text() if callable(text) else text or str(exc)
    return " ".join(str(text).split())[:800]


def _restore(client, target: TritonTarget, config: Path, old_config: str | None, state) -> None:
    if old_config is None:
        config.unlink(missing_ok=True)
        return
    config.write_text(old_config)
    if state.served and not client.is_model_ready(target.name, str(state.served)):
        client.load_model(target.name)


def _options(mdir: Path, overrides: dict) -> repo_mod.ServingOptions:
    saved = repo_mod.read_state(mdir).options or {}
    return repo_mod.ServingOptions(**{**saved, **{k: v for k, v in overrides.items() if v is not None}})


def deploy_version(
    model_path: str | Path,
    target: TritonTarget,
    *,
    backend: str,
    decoder: Decoder,
    batch_size: int = 8,
    boost: BoostList | None = None,
    **serving: int | str | None,
) -> DeployRecord:
    """Write version N+1 of `target.name` (the model and, if given, the boost list it decodes with), load it and
    report only once it is ready."""
    path = Path(model_path)
    if not path.exists():
        raise InputError(f"model not found: {path}")
    parse_host_port(target.url)
    mdir = repo_mod.model_dir(target.repo, target.name)
    opts = _options(mdir, serving)
    previous = repo_mod.read_state(mdir).served
    _require_live(target, previous)
    if boost is not None:  # the served model.py loads it with the transcriber's load_boosted: refuse one without
        from asr_flywheel.plugins.manager import Plugins

        if not callable(getattr(Plugins().transcriber_for(str(path), backend), "load_boosted", None)):
            raise InputError(f"transcriber {backend!r} cannot boost phrases: {path} cannot be served with a boost list")
    listed = boost.to_dict() if boost is not None else None
    info = repo_mod.add_version(target.repo, target.name, path, backend, str(decoder), batch_size, listed)
    seconds = _activate(target, info, opts, "deploy")
    return _record(target, info, previous, seconds, "deploy")


def rollback(target: TritonTarget, to_version: int | None = None) -> DeployRecord:
    """Serve an earlier version (default: the one served before the current one)."""
    mdir = repo_mod.model_dir(target.repo, target.name)
    state = repo_mod.read_state(mdir)
    _require_live(target, state.served)  # a dead server is named (with its URL) and the failure logged, not a trace
    if to_version is None:
        earlier = [h["version"] for h in state.history if h["version"] != state.served]
        if not earlier:
            raise InputError(f"{target.name} has no earlier served version to roll back to (served: {state.served})")
        to_version = earlier[-1]
    info = repo_mod.read_version(mdir, to_version)
    seconds = _activate(target, info, _options(mdir, {}), "rollback")
    return _record(target, info, state.served, seconds, "rollback")


def _record(target: TritonTarget, info, previous: int | None, seconds: float, action: str) -> DeployRecord:
    return DeployRecord(
        deployer="triton",
        model_path=info.source,
        endpoint=target.endpoint(info.version).ref(),
        version=str(info.version),
        previous_version=None if previous is None else str(previous),
        details={
            "action": action,
            "name": target.name,
            "repo": str(Path(target.repo).resolve()),
            "url": target.url,
            "protocol": target.protocol,
            "backend": info.backend,
            "decoder": info.decoder,
            "load_seconds": round(seconds, 2),
            "boost": None if info.boost is None else {k: info.boost[k] for k in ("hash", "count", "source")},
        },
    )
