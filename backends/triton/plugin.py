"""The `triton` deployer plugin: the Deployer contract over `deployer.deploy_version`."""

from __future__ import annotations

from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.errors import InputError
from asr_flywheel.plugins.contracts import Decoder, DeployRecord


def backend_of(model_path: str) -> str:
    """The offline transcriber plugin that claims this model: the served model.py loads it the same way."""
    from asr_flywheel.plugins.manager import Plugins

    claiming = [n for n, t in Plugins().transcribers().items() if n != "triton" and t.claims(model_path)]
    if not claiming:
        raise InputError(f"no installed backend recognises {model_path} (pass a .nemo file or an HF model directory)")
    return claiming[0]


def _configured() -> dict:
    """`[deploy]` from the configuration file, for callers that pass no target (e.g. a plain deploy step)."""
    from asr_flywheel.config import load_config

    cfg = load_config()
    d = cfg.deploy
    return {
        "repo": d.repo or str(Path(cfg.workspace) / "triton"),
        "url": d.url,
        "name": d.model_name,
        "protocol": d.protocol,
    }


class TritonDeployer:
    name = "triton"

    def deploy(self, model_path: str, *, decoder: Decoder, out_dir: Path, **options) -> DeployRecord:
        """Options: repo, url (HOST:PORT of the server's HTTP or gRPC port), name, protocol ("http"/"grpc"),
        backend (default: whichever transcriber claims the model), batch_size, and ServingOptions fields.
        Target options not given come from `[deploy]`."""
        from asr_flywheel.backends.triton.deployer import TritonTarget, deploy_version

        options = {**_configured(), **{k: v for k, v in options.items() if v is not None}}
        target = TritonTarget(
            Path(options.pop("repo")), options.pop("url"), options.pop("name"), options.pop("protocol", "http")
        )
        backend = options.pop("backend", None) or backend_of(model_path)
        record = deploy_version(model_path, target, backend=backend, decoder=decoder, **options)
        fio.write_json(Path(out_dir) / "deploy_record.json", vars(record))
        return record
