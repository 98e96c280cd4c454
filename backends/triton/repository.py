"""A Triton model repository the flywheel manages: one model directory per served name, one version per deploy.

Layout: `<repo>/<name>/config.pbtxt` (Python backend, dynamic batching, the served version pinned with a
`specific` version policy), `<repo>/<name>/<N>/{model.py, flywheel_version.json, model.nemo | model/}` and
`<repo>/<name>/flywheel_serving.json` (the served version and the history rollback reads). A version directory is
assembled under `<repo>/.serve/staging/` and renamed into place, so Triton never sees half a version.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

from asr_flywheel.errors import InputError

SERVING_FILE = "flywheel_serving.json"
VERSION_FILE = "flywheel_version.json"


@dataclass(frozen=True)
class VersionInfo:
    """What one version directory holds (written next to the model, read by model.py)."""

    version: int
    artifact: str
    backend: str
    decoder: str
    source: str
    batch_size: int = 8
    created_at: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    #: The boost list this version decodes with (`BoostList.to_dict()`), None for plain decoding: a version is
    #: the model plus its list, so a rollback restores the list too.
    boost: dict | None = None


@dataclass
class ServingState:
    served: int | None = None
    history: list[dict] = field(default_factory=list)
    #: The ServingOptions of the last deploy, reused by later deploys and rollbacks.
    options: dict = field(default_factory=dict)


@dataclass(frozen=True)
class ServingOptions:
    """Knobs of config.pbtxt. KIND_AUTO lets Triton pick the GPU when present (KIND_GPU fails without one)."""

    max_batch_size: int = 16
    queue_delay_us: int = 20000
    instance_kind: str = "KIND_AUTO"
    instances: int = 1


def check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name) or name.startswith(("-", "_")):
        raise InputError(f"invalid model name {name!r}: use letters, digits, '-' and '_' (not leading)")


def model_dir(repo: Path, name: str) -> Path:
    check_name(name)
    return Path(repo) / name


def versions(mdir: Path) -> list[int]:
    if not mdir.is_dir():
        return []
    return sorted(int(p.name) for p in mdir.iterdir() if p.is_dir() and p.name.isdigit())


def read_version(mdir: Path, version: int) -> VersionInfo:
    path = mdir / str(version) / VERSION_FILE
    if not path.is_file():
        known = ", ".join(map(str, versions(mdir))) or "none"
        raise InputError(f"{mdir.name} has no version {version} in {mdir.parent} (versions: {known})")
    return VersionInfo(**json.loads(path.read_text()))


def read_state(mdir: Path) -> ServingState:
    path = mdir / SERVING_FILE
    return ServingState(**json.loads(path.read_text())) if path.is_file() else ServingState()


def write_state(mdir: Path, state: ServingState) -> None:
    from asr_flywheel import io as fio

    fio.write_json(mdir / SERVING_FILE, asdict(state))


def config_pbtxt(name: str, info: VersionInfo, opts: ServingOptions) -> str:
    """Inputs: AUDIO = whole audio files (same shape for every request, so clips of any length batch together),
    or WAVEFORM float32 16 kHz rows + LENGTHS (ragged clips padded to the longest)."""
    return f"""name: "{name}"
backend: "python"
max_batch_size: {opts.max_batch_size}
input [
  {{ name: "AUDIO" data_type: TYPE_STRING dims: [ 1 ] optional: true }},
  {{ name: "WAVEFORM" data_type: TYPE_FP32 dims: [ -1 ] optional: true }},
  {{ name: "LENGTHS" data_type: TYPE_INT64 dims: [ 1 ] optional: true }}
]
output [
  {{ name: "TRANSCRIPT" data_type: TYPE_STRING dims: [ 1 ] }}
]
dynamic_batching {{ max_queue_delay_microseconds: {opts.queue_delay_us} }}
instance_group [ {{ count: {opts.instances} kind: {opts.instance_kind} }} ]
version_policy: {{ specific: {{ versions: [ {info.version} ] }} }}
parameters {{ key: "decoder" value: {{ string_value: "{info.decoder}" }} }}
parameters {{ key: "backend" value: {{ string_value: "{info.backend}" }} }}
"""


def write_config(mdir: Path, info: VersionInfo, opts: ServingOptions) -> None:
    from asr_flywheel import io as fio

    fio.write_text(mdir / "config.pbtxt", config_pbtxt(mdir.name, info, opts))


def model_py_source() -> str:
    return resources.files("asr_flywheel.backends.triton").joinpath("served_model.py").read_text()


def add_version(
    repo: Path, name: str, model_path: Path, backend: str, decoder: str, batch_size: int, boost: dict | None = None
) -> VersionInfo:
    """Copy the model, its boost list and model.py into version N+1 (staged, then renamed into place)."""
    mdir = model_dir(repo, name)
    existing = versions(mdir)
    number = (existing[-1] if existing else 0) + 1
    artifact = "model" if model_path.is_dir() else "model" + "".join(model_path.suffixes[-1:])
    info = VersionInfo(number, artifact, backend, decoder, str(model_path.resolve()), batch_size, boost=boost)
    staging = Path(repo) / ".serve" / "staging" / f"{name}-{number}-{time.time_ns()}"
    staging.mkdir(parents=True)
    try:
        if model_path.is_dir():
            shutil.copytree(model_path, staging / artifact)
        else:
            shutil.copy2(model_path, staging / artifact)
        (staging / "model.py").write_text(model_py_source())
        (staging / VERSION_FILE).write_text(json.dumps(asdict(info), indent=2))
        mdir.mkdir(parents=True, exist_ok=True)
        staging.rename(mdir / str(number))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return info
