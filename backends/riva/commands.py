"""The exact Riva build and deploy commands for a NeMo model, from its architecture (read from the .nemo).

nemo2riva, riva-build, riva-deploy and the NIM container run only in NVIDIA's containers on a GPU, so the flywheel
writes them as a runnable script plus a JSON record instead of running them. Decoders: CTC models use `greedy`;
RNNT and TDT use `nemo` (`greedy_ctc` is not a valid value). Keys are read from the environment when the script
runs (`$NGC_API_KEY`, `$NVIDIA_API_KEY`): no secret value is ever written.
"""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.plugins.contracts import Decoder

SERVICEMAKER_IMAGE = "nvcr.io/nvidia/riva/riva-speech:2.19.0-servicemaker"
NIM_IMAGE = "nvcr.io/nim/nvidia/parakeet-0-6b-ctc-en-us:latest"
#: The encryption key nemo2riva/riva-build use by convention (not a secret: it only scrambles the archive).
RIVA_KEY = "tlt_encode"
SECRET_ENV = ("NGC_API_KEY", "NVIDIA_API_KEY")


@dataclass(frozen=True)
class Architecture:
    decoder: Decoder
    model_class: str
    family: str

    @property
    def riva_decoder(self) -> str:
        return "greedy" if self.decoder is Decoder.CTC else "nemo"

    @property
    def nemo2riva_flags(self) -> list[str]:
        return ["--onnx-opset", "18", "--max-dim", "1000"] if self.decoder is Decoder.CTC else ["--format", "nemo"]

    @property
    def nim_source(self) -> str:
        """The `nemo2riva` options of the NIM build form (same export choice as the classic form)."""
        if self.decoder is Decoder.CTC:
            return "{onnx_opset: 18, max_dim: 1000}"
        return "{format: nemo}"


def read_architecture(model_path: str | Path) -> Architecture:
    """From the model's own model_config.yaml; anything but a .nemo is refused (Riva builds NeMo models)."""
    from asr_flywheel.backends.nemo.architecture import decoder_of, describe_config, read_nemo_config

    path = Path(model_path)
    if not (path.is_file() and path.suffix == ".nemo"):
        raise InputError(
            f"Riva builds NeMo models: {path} is not a .nemo file (Hugging Face models serve through --to triton)"
        )
    cfg = read_nemo_config(path)
    target = str(cfg.get("target", "")).rsplit(".", 1)[-1] or "unknown"
    return Architecture(decoder_of(cfg), target, describe_config(str(path), cfg).family)


@dataclass
class RivaPlan:
    model: str
    name: str
    architecture: dict
    decoder_type: str
    commands: dict[str, str] = field(default_factory=dict)
    secrets_from_environment: tuple[str, ...] = SECRET_ENV
    #: Riva boosts words at request time: the words and score every client sends (`riva://...?boost=` scoring,
    #: `riva.client.add_word_boosting_to_config`); None when the model decodes plain.
    boost: dict | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def plan(model_path: str | Path, name: str, arch: Architecture, *, grpc_port: int = 50051, http_port: int = 9000):
    """Every command, with paths inside the containers (/model holds the .nemo, /data the build outputs)."""
    q = shlex.quote
    nemo = f"/model/{Path(model_path).name}"
    flags = " ".join(arch.nemo2riva_flags)
    commands = {
        "nemo2riva": f"nemo2riva --out /data/{name}.riva --key {RIVA_KEY} {flags} {nemo}",
        "riva_build_classic": (
            f"riva-build speech_recognition /data/{name}.rmir:{RIVA_KEY} /data/{name}.riva:{RIVA_KEY} --offline "
            f"--name={name} --decoder_type={arch.riva_decoder} --ms_per_timestep=80 --chunk_size=4.8 "
            "--left_padding_size=1.6 --right_padding_size=1.6 --featurizer.max_batch_size=8 "
            "--nn.opt_batch_size=8 --language_code=en-US --force"
        ),
        "riva_build_nim": (
            "riva-build --config-path=pkg://servicemaker.configs.asr --config-name=offline "
            f"output_path=/data/export {q(f'source_path=[{{path: {nemo}, nemo2riva: {arch.nim_source}}}]')} "
            f"decoder={arch.riva_decoder} name={name}"
        ),
        "riva_deploy": f"riva-deploy -f /data/{name}.rmir:{RIVA_KEY} /data/models",
        "nim_run": (
            f"docker run -d --rm --gpus all --name {name}-nim -e NGC_API_KEY "
            f"-e NIM_TAGS_SELECTOR=name={name},mode=ofl -e NIM_DISABLE_MODEL_DOWNLOAD=true "
            '-e NIM_EXPORT_PATH=/opt/nim/export -v "$WORK/export:/opt/nim/export" '
            f'-p {grpc_port}:50051 -p {http_port}:9000 "$NIM_IMAGE"'
        ),
        "health": f"curl -fsS http://localhost:{http_port}/v1/health/ready",
    }
    arch_dict = {"decoder": str(arch.decoder), "class": arch.model_class, "family": arch.family}
    return RivaPlan(str(Path(model_path).resolve()), name, arch_dict, arch.riva_decoder, commands)
