"""The `triton` deployer plugin: the Deployer contract (and the optional Server one) over `deployer`, `repository`
and `server`. Flows and the CLI see only these methods, so every Triton rule (URL form, model names, versions,
the local tritonserver) stays in this package."""

from __future__ import annotations

from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.plugins.contracts import Decoder, DeployRecord, LocalServer, ServedVersions

TARGET_KEYS = ("repo", "url", "name", "protocol")
#: `[deploy.triton]`: the Triton deployer's own settings, and what each must be.
SETTINGS = {"repo": "the model repository directory (default: <workspace>/triton)"}


def settings_problems(table: dict) -> list[tuple[str, str]]:
    """(key, why) for every key of `[deploy.triton]` that is unknown or not a string."""
    known = ", ".join(f"{k} ({why})" for k, why in SETTINGS.items())
    return [(k, f"unknown key (known: {known})") for k in table if k not in SETTINGS] + [
        (k, f"expected a path string, got {v!r}") for k, v in table.items() if k in SETTINGS and not isinstance(v, str)
    ]


def backend_of(model_path: str) -> str:
    """The offline transcriber plugin that claims this model: the served model.py loads it the same way."""
    from asr_flywheel.plugins.manager import Plugins

    claiming = [n for n, t in Plugins().transcribers().items() if n != "triton" and t.claims(model_path)]
    if not claiming:
        raise InputError(f"no installed backend recognises {model_path} (pass a .nemo file or an HF model directory)")
    return claiming[0]


def _local(info) -> LocalServer:
    return LocalServer(info.pid, str(info.repo), info.http_url, info.grpc_url, str(info.log))


class TritonDeployer:
    name = "triton"
    #: A version is the model plus its boost list (`flywheel_version.json`); model.py decodes with it.
    ships_boost_lists = True

    def check_target(self, config=None, **options) -> dict:
        """repo, url (HOST:PORT of the server's HTTP or gRPC port), name, protocol ("http"/"grpc"): given options
        over the configuration, the repo from `[deploy.triton] repo` (or a flat `[deploy] repo` of an older config),
        defaulting to <workspace>/triton. Other options pass through unchanged."""
        from asr_flywheel.backends.triton.client import parse_host_port
        from asr_flywheel.backends.triton.repository import check_name
        from asr_flywheel.config import load_config
        from asr_flywheel.config_source import line_of

        cfg = config if config is not None else load_config()
        d = cfg.deploy
        own = {**{k: v for k, v in d.flat().items() if k in SETTINGS}, **d.table(self.name)}
        problems = [
            Problem(line_of(cfg.source, f"deploy.{self.name}.{k}"), f"deploy.{self.name}.{k}", why)
            for k, why in settings_problems(d.table(self.name))
        ]
        repo = own.get("repo") or str(Path(cfg.workspace) / "triton")
        defaults = {"repo": repo, "url": d.url, "name": d.model_name, "protocol": d.protocol}
        opts = {**defaults, **{k: v for k, v in options.items() if v is not None}}
        opts["repo"] = str(opts["repo"])
        if opts["protocol"] not in ("http", "grpc"):
            problems.append(Problem(0, "--protocol", f"must be 'http' or 'grpc', got {opts['protocol']!r}"))
        for key, check in (("url", parse_host_port), ("name", check_name)):
            try:
                check(opts[key])
            except InputError as exc:
                problems.append(Problem(0, f"--{key}", str(exc)))
        if problems:
            raise InputError("bad Triton deploy target", problems)
        return opts

    def _target(self, options: dict):
        from asr_flywheel.backends.triton.deployer import TritonTarget
        from asr_flywheel.config import FlywheelConfig

        given = {k for k, v in options.items() if v is not None}
        opts = self.check_target(FlywheelConfig() if set(TARGET_KEYS) <= given else None, **options)
        target = TritonTarget(Path(opts.pop("repo")), opts.pop("url"), opts.pop("name"), opts.pop("protocol"))
        return target, opts

    def deploy(self, model_path: str, *, decoder: Decoder, out_dir: Path, **options) -> DeployRecord:
        """Options: the target (see `check_target`), backend (default: whichever transcriber claims the model),
        batch_size, and ServingOptions fields. Writes version N+1 and reports only once it is ready."""
        from asr_flywheel.backends.triton.deployer import deploy_version

        target, options = self._target(options)
        backend = options.pop("backend", None) or backend_of(model_path)
        record = deploy_version(model_path, target, backend=backend, decoder=decoder, **options)
        fio.write_json(Path(out_dir) / "deploy_record.json", vars(record))
        return record

    def rollback(self, name: str, *, to_version: int | str | None = None, **options) -> DeployRecord:
        from asr_flywheel.backends.triton.deployer import rollback

        target, _ = self._target({**options, "name": name})
        return rollback(target, None if to_version is None else int(to_version))

    def versions(self, name: str, **options) -> ServedVersions:
        """Read from the model repository (no server contact): what is served now and what a rollback can pick."""
        from asr_flywheel.backends.triton import repository as repo_mod

        target, _ = self._target({**options, "name": name})
        mdir = repo_mod.model_dir(target.repo, name)
        served = repo_mod.read_state(mdir).served
        return ServedVersions(
            deployer=self.name,
            name=name,
            served=None if served is None else str(served),
            versions=[str(v) for v in repo_mod.versions(mdir)],
            endpoint=None if served is None else target.endpoint(served).ref(),
        )

    def serve_start(self, repo: Path, *, host: str, http_port: int, grpc_port: int) -> LocalServer:
        from asr_flywheel.backends.triton import server

        server.check_ports(http_port, grpc_port, host)
        return _local(server.start(repo, host=host, http_port=http_port, grpc_port=grpc_port))

    def serve_stop(self, repo: Path) -> bool:
        from asr_flywheel.backends.triton import server

        return server.stop(repo)

    def serve_status(self, repo: Path) -> LocalServer | None:
        from asr_flywheel.backends.triton import server

        info = server.running(repo)
        return None if info is None else _local(info)
