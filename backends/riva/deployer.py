"""The `riva` deployer plugin: writes riva_deploy.sh + riva_deploy.json (nothing here can run Riva itself)."""

from __future__ import annotations

from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.plugins.contracts import Decoder, DeployRecord


class RivaDeployer:
    name = "riva"

    def deploy(self, model_path: str, *, decoder: Decoder, out_dir: Path, **options) -> DeployRecord:
        """Options: name (default: the model file's stem), grpc_port, http_port. The decoder is re-read from the
        model; a caller's different claim is an error rather than a silently wrong build."""
        from asr_flywheel.backends.riva import commands, script

        arch = commands.read_architecture(model_path)
        if decoder is not None and Decoder(decoder) is not arch.decoder:
            raise InputError(f"{model_path} is a {arch.decoder} model (read from its config), not {decoder}")
        name = options.get("name") or Path(model_path).stem.replace(".", "-")
        ports = {k: int(options[k]) for k in ("grpc_port", "http_port") if options.get(k)}
        the_plan = commands.plan(model_path, name, arch, **ports)
        sh, record = script.write(the_plan, out_dir)
        return DeployRecord(
            deployer="riva",
            model_path=the_plan.model,
            endpoint=None,
            version=None,
            details={"script": str(sh), "record": str(record), **the_plan.to_dict()},
        )
