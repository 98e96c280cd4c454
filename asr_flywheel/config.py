"""Thresholds and vocabularies as configuration: a documented TOML file plus CLI overrides.

Defaults are the SPEC's. Lookup order: explicit `--config PATH` → `$FLYWHEEL_CONFIG` → `./flywheel.toml`
→ built-in defaults. Unknown keys and wrong types are errors listing every offender, because a typo in a
threshold silently falling back to a default would change what the gate decides.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from asr_flywheel.errors import InputError, Problem

DEFAULT_CATEGORIES = ("drug", "procedure", "anatomy", "condition", "lab", "role")
DEFAULT_IPA_SOURCES = ("override", "merriam-webster", "magpie_g2p", "lexicon", "g2p")


@dataclass(frozen=True)
class ManifestConfig:
    #: Allowed `entity_category` values. Extend here, never ad hoc in a manifest.
    categories: tuple[str, ...] = DEFAULT_CATEGORIES
    #: Allowed `ipa_source` values (pronunciation provenance of synthetic audio).
    ipa_sources: tuple[str, ...] = DEFAULT_IPA_SOURCES
    sample_rate: int = 16000
    channels: int = 1
    #: When true, a sample-rate mismatch is accepted because the loaders resample; otherwise it is an error.
    resample: bool = False
    #: When true, multi-channel audio is accepted because the loaders downmix; otherwise it is an error.
    downmix: bool = False
    #: A `duration` field further than this from the audio header is an error.
    duration_tolerance_s: float = 0.25
    #: Threads reading audio headers during validation.
    audio_check_workers: int = 8


@dataclass(frozen=True)
class GateConfig:
    priority: tuple[str, ...] = ("drug",)
    min_rows: int = 100
    min_priority_rows: int = 5
    finetune_above: float = 0.3
    harden_below: float = 0.1
    g2p_sources: tuple[str, ...] = ("magpie_g2p", "g2p")
    good_sources: tuple[str, ...] = ("override", "merriam-webster")
    #: FIX_PRONUNCIATION when g2p KER exceeds good-source KER by at least this (absolute)...
    pronunciation_gap: float = 0.2
    #: ...while the good sources are at or below this KER.
    good_source_max: float = 0.1


@dataclass(frozen=True)
class SplitConfig:
    val_fraction: float = 0.2
    seed: int = 42


@dataclass(frozen=True)
class DecisionConfig:
    #: Targeted categories; empty means "the gate's priority categories".
    targets: tuple[str, ...] = ()
    keep_drop: float = 0.20
    grow_drop: float = 0.05
    overfit_rise: float = 0.05
    plateau_drop: float = 0.05
    #: When true, a delta whose paired-bootstrap CI includes zero is INSUFFICIENT_EVIDENCE.
    require_significance: bool = False


@dataclass(frozen=True)
class StatsConfig:
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class CycleConfig:
    """Defaults for `flywheel_cycle` runs (deployments and events can override per run)."""

    #: Manifest cycled by the scheduled deployment (events and manual runs name their own).
    manifest: str = ""
    #: Manifests the watcher checks for growth (`flywheel watch`, the manifest-watch deployment).
    watch: tuple[str, ...] = ()
    #: Catalogue name, .nemo file or Hugging Face directory used when the registry has no champion yet.
    base_model: str = "nvidia/parakeet-tdt-0.6b-v2"
    #: Force a backend ("nemo", "hf"); empty means "from the base model".
    backend: str = ""
    #: Rows per transcription task (shards run on the flow's task runner).
    shard_size: int = 256
    #: 8 is the measured per-sample sweet spot on 2-vCPU machines; raise to 32+ on GPUs.
    batch_size: int = 8
    #: Deploy a KEEP model with this deployer plugin ("" disables deploying).
    deployer: str = ""
    #: Pause for a human approval (typed input in the Prefect UI) before deploying.
    require_approval: bool = False
    approval_timeout_s: int = 3600
    #: Global concurrency limit guarding the GPU; created with limit 1 if missing.
    gpu_slot: str = "gpu-0"
    #: Lease on the GPU slot, renewed while training runs: a killed run frees the slot after at most this long.
    gpu_lease_s: int = 120
    #: Lightning scale-out for training.
    devices: str = "1"
    num_nodes: int = 1
    strategy: str = "auto"


@dataclass(frozen=True)
class FlywheelConfig:
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    cycle: CycleConfig = field(default_factory=CycleConfig)
    #: Hyperparameter overrides passed to the trainer (e.g. epochs, lr, batch_size, precision).
    hyperparameters: dict = field(default_factory=dict)
    #: Where cycle directories and the model registry live.
    workspace: str = "workspace"

    @property
    def decision_targets(self) -> tuple[str, ...]:
        return self.decision.targets or self.gate.priority

    def replace(self, section: str, **changes: Any) -> FlywheelConfig:
        """Return a copy with some keys of one section changed (used for CLI overrides)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        problems = _check_section(section, type(getattr(self, section)), changes, line=0)
        if problems:
            raise InputError("invalid configuration override", problems)
        current = getattr(self, section)
        coerced = {k: _coerce(_hints(type(current))[k], v) for k, v in changes.items()}
        return dataclasses.replace(self, **{section: dataclasses.replace(current, **coerced)})


_SECTIONS = {
    name: tp for name, tp in get_type_hints(FlywheelConfig).items() if name not in ("workspace", "hyperparameters")
}


def _hints(cls) -> dict[str, Any]:
    return get_type_hints(cls)


def _type_ok(tp, value) -> bool:
    if get_origin(tp) is tuple:
        (inner, _ellipsis) = get_args(tp)
        return isinstance(value, list | tuple) and all(_type_ok(inner, v) for v in value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _coerce(tp, value):
    if get_origin(tp) is tuple:
        return tuple(value)
    if tp is float:
        return float(value)
    return value


def _check_section(name: str, cls, values: dict, line: int) -> list[Problem]:
    hints = _hints(cls)
    problems = []
    for key, value in values.items():
        if key not in hints:
            problems.append(Problem(line, f"{name}.{key}", f"unknown key (known: {', '.join(sorted(hints))})"))
        elif not _type_ok(hints[key], value):
            problems.append(Problem(line, f"{name}.{key}", f"expected {_type_name(hints[key])}, got {value!r}"))
    return problems


def _type_name(tp) -> str:
    if get_origin(tp) is tuple:
        return f"a list of {get_args(tp)[0].__name__}"
    return tp.__name__


def _range_problems(cfg: FlywheelConfig) -> list[Problem]:
    p = []
    if not 0 < cfg.split.val_fraction < 1:
        p.append(Problem(0, "split.val_fraction", "must be strictly between 0 and 1"))
    if not 0 < cfg.stats.confidence < 1:
        p.append(Problem(0, "stats.confidence", "must be strictly between 0 and 1"))
    if cfg.stats.bootstrap_resamples < 100:
        p.append(Problem(0, "stats.bootstrap_resamples", "must be at least 100"))
    if cfg.gate.harden_below > cfg.gate.finetune_above:
        p.append(Problem(0, "gate.harden_below", "must not exceed gate.finetune_above"))
    if cfg.decision.grow_drop > cfg.decision.keep_drop:
        p.append(Problem(0, "decision.grow_drop", "must not exceed decision.keep_drop"))
    if cfg.cycle.gpu_lease_s < 60:
        p.append(Problem(0, "cycle.gpu_lease_s", "must be at least 60 (Prefect's minimum concurrency lease)"))
    unknown = [c for c in cfg.gate.priority if c not in cfg.manifest.categories]
    if unknown:
        p.append(Problem(0, "gate.priority", f"not in manifest.categories: {', '.join(unknown)}"))
    return p


def from_dict(data: dict) -> FlywheelConfig:
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "hyperparameters":
            if not isinstance(value, dict):
                problems.append(Problem(0, "hyperparameters", "expected a table"))
            else:
                kwargs["hyperparameters"] = dict(value)
        elif key == "workspace":
            if not isinstance(value, str):
                problems.append(Problem(0, "workspace", f"expected a path string, got {value!r}"))
            else:
                kwargs["workspace"] = value
        elif key in _SECTIONS:
            cls = _SECTIONS[key]
            if not isinstance(value, dict):
                problems.append(Problem(0, key, "expected a table"))
                continue
            sect = _check_section(key, cls, value, line=0)
            problems += sect
            if not sect:
                kwargs[key] = cls(**{k: _coerce(_hints(cls)[k], v) for k, v in value.items()})
        else:
            known = ", ".join(["workspace", "hyperparameters", *_SECTIONS])
            problems.append(Problem(0, key, f"unknown section (known: {known})"))
    if problems:
        raise InputError("invalid configuration", problems)
    cfg = FlywheelConfig(**kwargs)
    problems = _range_problems(cfg)
    if problems:
        raise InputError("invalid configuration", problems)
    return cfg


def load_config(path: str | os.PathLike | None = None) -> FlywheelConfig:
    """Load configuration; see the module docstring for the lookup order."""
    candidate = path or os.environ.get("FLYWHEEL_CONFIG")
    if candidate is None and Path("flywheel.toml").is_file():
        candidate = "flywheel.toml"
    if candidate is None:
        return FlywheelConfig()
    p = Path(candidate)
    if not p.is_file():
        raise InputError(f"configuration file not found: {p}")
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"configuration file {p} is not valid TOML: {exc}") from exc
    return from_dict(data)
