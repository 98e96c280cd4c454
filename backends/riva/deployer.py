"""The `riva` deployer plugin: writes riva_deploy.sh + riva_deploy.json (nothing here can run Riva itself)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from asr_flywheel.boost import BoostList
from asr_flywheel.errors import InputError, Problem
from asr_flywheel.plugins.contracts import Decoder, DeployRecord, ServedVersions

NOT_SUPPORTED = "not supported: Riva deploys are run by riva_deploy.sh on the target host"


def word_boosting(boost: BoostList) -> dict:
    """Riva's request-time word boosting for a boost list: the words and one score (the list's alpha; Riva's
    documented range for boosted words is about 20 to 100 for a strong push, so set `[boost] alpha` for Riva on a
    development manifest like any weight), with the list's hash so a record names which list it carries."""
    return {"hash": boost.hash, "words": list(boost.phrases), "score": boost.weights.alpha}


#: `[deploy.riva]`: the Riva deployer's own settings (the flags of the same names win).
SETTINGS = ("name", "grpc_port", "http_port")


class RivaDeployer:
    name = "riva"
    #: The record and the script carry the words; Riva boosts them per request.
    ships_boost_lists = True

    def check_target(self, config=None, **options) -> dict:
        """name (default: the model file's stem), grpc_port, http_port: given options over `[deploy.riva]`.
        Nothing is contacted: this deployer only writes the build script."""
        from asr_flywheel.config import load_config
        from asr_flywheel.config_source import line_of

        cfg = config if config is not None else load_config()
        table = cfg.deploy.table(self.name)

        def where(key: str) -> tuple[int, str]:
            if options.get(key) is not None:
                return 0, f"--{key.replace('_', '-')}"
            return line_of(cfg.source, f"deploy.riva.{key}"), f"deploy.riva.{key}"

        problems = [
            Problem(*where(k), f"unknown key (known: {', '.join(SETTINGS)})") for k in table if k not in SETTINGS
        ]
        opts = {
            **{k: v for k, v in table.items() if k in SETTINGS},
            **{k: v for k, v in options.items() if v is not None},
        }
        problems += [
            Problem(*where(k), f"must be a port number (1-65535), got {opts[k]!r}")
            for k in ("grpc_port", "http_port")
            if k in opts and not (str(opts[k]).isdigit() and 0 < int(opts[k]) < 65536)
        ]
        problems += [
            Problem(0, f"--{k}", "not used by the riva deployer (the script runs on the target host; see --out)")
            for k in ("repo", "url", "protocol")
            if k in opts
        ]
        if problems:
            raise InputError("bad Riva deploy options", problems)
        return opts

    def rollback(self, name: str, *, to_version: int | str | None = None, **options) -> DeployRecord:
        raise InputError(f"rollback of {name!r} is {NOT_SUPPORTED}")

    def versions(self, name: str, **options) -> ServedVersions:
        raise InputError(f"listing the versions of {name!r} is {NOT_SUPPORTED}")

    def deploy(self, model_path: str, *, decoder: Decoder, out_dir: Path, **options) -> DeployRecord:
        """Options: name (default: the model file's stem), grpc_port, http_port. The decoder is re-read from the
        model; a caller's different claim is an error rather than a silently wrong build."""
        from asr_flywheel.backends.riva import commands, script

        options = self.check_target(**options)
        arch = commands.read_architecture(model_path)
        if decoder is not None and Decoder(decoder) is not arch.decoder:
            raise InputError(f"{model_path} is a {arch.decoder} model (read from its config), not {decoder}")
        name = options.get("name") or Path(model_path).stem.replace(".", "-")
        ports = {k: int(options[k]) for k in ("grpc_port", "http_port") if options.get(k)}
        the_plan = commands.plan(model_path, name, arch, **ports)
        boost = options.get("boost")
        if boost is not None:  # word boosting is per request in Riva: the record and the script carry the words
            the_plan = replace(the_plan, boost=word_boosting(boost))
        sh, record = script.write(the_plan, out_dir)
        return DeployRecord(
            deployer="riva",
            model_path=the_plan.model,
            endpoint=None,
            version=None,
            details={"script": str(sh), "record": str(record), **the_plan.to_dict()},
        )
