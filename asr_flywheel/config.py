"""Thresholds and vocabularies as configuration: a documented TOML file plus CLI overrides.

Defaults are the rules of docs/design.md. Lookup order: explicit `--config PATH` → `$FLYWHEEL_CONFIG` →
`./flywheel.toml` → built-in defaults. Unknown keys and wrong types are errors listing every offender, each with
the file and the line it is on, because a typo in a threshold silently falling back to a default would change what
the gate decides.

Validation stays with these dataclasses rather than pydantic: the checks are a few small functions, the core keeps
no heavy dependency, and the line numbers (which pydantic cannot give for TOML) need this code anyway.
"""

from __future__ import annotations

import dataclasses
import os
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from asr_flywheel.config_source import ConfigSource, line_of, read_toml
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
    #: Hold out this many whole terms (all their rows go to validation) to measure KER on unseen terms.
    holdout_terms: int = 0
    #: Send at least this many rows of every term to validation (one row always stays in training).
    min_heldout_per_term: int = 0
    #: Hold out whole voices (every row of theirs goes to validation) to measure KER on unseen voices: a number
    #: (voices drawn by the seed) or a list of voice ids (`["festival:slt_hts"]`).
    holdout_voices: int | tuple[str, ...] = 0


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
    #: A candidate whose control-set WER rises more than this (relative) is REGRESSED, never kept.
    max_control_wer_rise: float = 0.10


@dataclass(frozen=True)
class StatsConfig:
    bootstrap_resamples: int = 2000
    confidence: float = 0.95
    seed: int = 0


@dataclass(frozen=True)
class CycleConfig:
    """Defaults for `flywheel_cycle` runs (deployments and events can override per run)."""

    #: This flywheel's name on a shared Prefect server: runs are `<name>-cycle-N`, artifact keys
    #: `<name>-cycle-N-gate`... ("" = the workspace folder's name).
    name: str = ""
    #: Manifest cycled by the scheduled deployment (events and manual runs name their own).
    manifest: str = ""
    #: Manifests the watcher checks for growth (`flywheel watch`, the manifest-watch deployment).
    watch: tuple[str, ...] = ()
    #: General-English control manifest re-scored with every candidate ("" disables the control guard).
    control_manifest: str = ""
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
    #: Context biasing in the cycle (docs/design.md#boosting): "off"; "first" (score the held-out rows and the
    #: control set with the manifest's terms boosted before training, and skip training when that alone is a KEEP:
    #: BOOST); "always" (also, score every fine-tuned candidate with the boost list and name the better of the two).
    boost: str = "off"


@dataclass(frozen=True)
class BoostConfig:
    """The decoder's biasing weights (`flywheel eval --boost`, `[cycle] boost`): how strongly a listed phrase is
    favoured (alpha: NeMo's `boosting_tree_alpha`) and the score per token along a phrase (context_score,
    depth_scaling: NeMo's boosting tree). Choose them on a development manifest, never on the rows that decide."""

    alpha: float = 1.0
    context_score: float = 1.0
    depth_scaling: float = 2.0


@dataclass(frozen=True)
class TrainConfig:
    """Replay against forgetting: general-English rows mixed into every fine-tuning set (asr_flywheel.replay)."""

    #: General-English manifest to draw replay rows from ("" disables replay). Control rows are never drawn.
    replay_manifest: str = ""
    #: Share of the mixed training set that is replay rows, in [0, 1): 0.5 = as many general rows as clinical.
    replay_fraction: float = 0.0
    #: Seed of the replay sample and of the mixed order.
    replay_seed: int = 0


@dataclass(frozen=True)
class ServerConfig:
    """The Prefect server `flywheel server up` runs for this workspace."""

    #: SQLAlchemy URL of Prefect's database: "" = SQLite under <workspace>/prefect (one machine);
    #: `postgresql+asyncpg://USER:PASSWORD@HOST:PORT/DB` for production (many writers: workers, events, the UI).
    database: str = ""


@dataclass(frozen=True)
class DeployConfig:
    """Where `[cycle] deployer` ships a KEEP model, and whether served parity must hold (docs/design.md#serving).

    The keys here mean the same for every deployer. A deployer's own settings are its table, `[deploy.<name>]`
    (e.g. `[deploy.triton] repo`), which the core keeps as given in `settings` and the deployer plugin validates
    (`Deployer.check_target`). A key written flat in `[deploy]` that is not one of these is kept in `settings`
    too, for the deployer that reads it (configs written before the tables)."""

    #: HOST:PORT of the serving endpoint (e.g. Triton's HTTP port for protocol "http", its gRPC port for "grpc").
    url: str = "127.0.0.1:8000"
    protocol: str = "http"
    #: The served model's name (one name, one version per deploy).
    model_name: str = "clinical-asr"
    #: Fail the deploy (and roll the endpoint back) when served transcripts differ from the offline ones.
    require_parity: bool = True
    #: Concurrent requests used to score through the endpoint.
    concurrency: int = 8
    #: Whether a deploy that only writes build files (Riva: no live endpoint, so no parity) may change the champion.
    promote_unserved: bool = False
    #: The deployers' own tables by deployer name, and flat keys that are not the ones above.
    settings: dict[str, Any] = field(default_factory=dict)

    def table(self, deployer: str) -> dict[str, Any]:
        """`[deploy.<deployer>]` as written (empty when absent)."""
        value = self.settings.get(deployer)
        return dict(value) if isinstance(value, dict) else {}

    def flat(self) -> dict[str, Any]:
        """Keys written directly under `[deploy]` that the core does not know (a deployer's, in an older config)."""
        return {k: v for k, v in self.settings.items() if not isinstance(v, dict)}


@dataclass(frozen=True)
class FlywheelConfig:
    manifest: ManifestConfig = field(default_factory=ManifestConfig)
    gate: GateConfig = field(default_factory=GateConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    decision: DecisionConfig = field(default_factory=DecisionConfig)
    stats: StatsConfig = field(default_factory=StatsConfig)
    cycle: CycleConfig = field(default_factory=CycleConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    deploy: DeployConfig = field(default_factory=DeployConfig)
    boost: BoostConfig = field(default_factory=BoostConfig)
    server: ServerConfig = field(default_factory=ServerConfig)
    #: Hyperparameter overrides passed to the trainer (e.g. epochs, lr, batch_size, precision).
    hyperparameters: dict[str, Any] = field(default_factory=dict)
    #: Where cycle directories and the model registry live.
    workspace: str = "workspace"
    #: The file this configuration was read from (None: built-in defaults); not a TOML key.
    source: ConfigSource | None = field(default=None, compare=False, repr=False)

    @property
    def decision_targets(self) -> tuple[str, ...]:
        return self.decision.targets or self.gate.priority

    def replace(self, section: str, **changes: Any) -> FlywheelConfig:
        """Return a copy with some keys of one section changed (used for CLI overrides)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        if not changes:
            return self
        problems = _check_section(section, type(getattr(self, section)), changes, None)
        if problems:
            raise InputError("invalid command-line override", problems)
        current = getattr(self, section)
        own, rest = _split_open(type(current), changes)
        coerced = {k: _coerce(_hints(type(current))[k], v) for k, v in own.items()}
        if rest:
            coerced[_OPEN] = {**getattr(current, _OPEN), **rest}
        updated = dataclasses.replace(self, **{section: dataclasses.replace(current, **coerced)})
        problems = [pr for pr in _range_problems(updated) if pr.field.startswith(f"{section}.")]
        if problems:
            raise InputError("invalid command-line override", problems)
        return updated


_SECTIONS = {
    name: tp
    for name, tp in get_type_hints(FlywheelConfig).items()
    if name not in ("workspace", "hyperparameters", "source")
}


def _hints(cls) -> dict[str, Any]:
    return get_type_hints(cls)


def _type_ok(tp, value) -> bool:
    if isinstance(tp, types.UnionType):
        return any(_type_ok(t, value) for t in get_args(tp))
    if get_origin(tp) is tuple:
        (inner, _ellipsis) = get_args(tp)
        return isinstance(value, list | tuple) and all(_type_ok(inner, v) for v in value)
    if tp is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if tp is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, tp)


def _coerce(tp, value):
    if isinstance(tp, types.UnionType):
        return _coerce(next(t for t in get_args(tp) if _type_ok(t, value)), value)
    if get_origin(tp) is tuple:
        return tuple(value)
    if tp is float:
        return float(value)
    return value


#: The field of a section that keeps the keys the core does not know, for a plugin to validate.
_OPEN = "settings"


def _split_open(cls, values: dict) -> tuple[dict, dict]:
    """(the section's own keys, the rest) for a section with an open `settings` table; (values, {}) otherwise."""
    hints = _hints(cls)
    if _OPEN not in hints:
        return values, {}
    own = {k: v for k, v in values.items() if k in hints and k != _OPEN}
    return own, {k: v for k, v in values.items() if k not in own}


def _check_section(name: str, cls, values: dict, source: ConfigSource | None) -> list[Problem]:
    hints = _hints(cls)
    values, _rest = _split_open(cls, values)
    problems = []
    for key, value in values.items():
        line = source.line_of(f"{name}.{key}") if source else 0
        if key not in hints:
            problems.append(Problem(line, f"{name}.{key}", f"unknown key (known: {', '.join(sorted(hints))})"))
        elif not _type_ok(hints[key], value):
            problems.append(Problem(line, f"{name}.{key}", f"expected {_type_name(hints[key])}, got {value!r}"))
        elif (reason := _out_of_range(f"{name}.{key}", value)) is not None:
            problems.append(Problem(line, f"{name}.{key}", reason))
    return problems


#: The range of every numeric key: (low, high, low_inclusive, high_inclusive); None is unbounded. A value outside it
#: would make a rule say something it does not mean (a negative drop threshold keeps identical metrics).
_RANGES: dict[str, tuple[float | None, float | None, bool, bool]] = {
    "manifest.sample_rate": (1, None, True, False),
    "manifest.channels": (1, None, True, False),
    "manifest.duration_tolerance_s": (0, None, True, False),
    "manifest.audio_check_workers": (1, None, True, False),
    "gate.min_rows": (1, None, True, False),
    "gate.min_priority_rows": (1, None, True, False),
    "gate.finetune_above": (0, 1, True, True),
    "gate.harden_below": (0, 1, True, True),
    "gate.pronunciation_gap": (0, 1, True, True),
    "gate.good_source_max": (0, 1, True, True),
    "split.val_fraction": (0, 1, False, False),
    "split.seed": (0, None, True, False),
    "split.holdout_terms": (0, None, True, False),
    "split.holdout_voices": (0, None, True, False),
    "split.min_heldout_per_term": (0, None, True, False),
    "decision.keep_drop": (0, 1, False, True),
    "decision.grow_drop": (0, 1, False, True),
    "decision.overfit_rise": (0, None, False, False),
    "decision.plateau_drop": (0, 1, True, True),
    # negative: the candidate's control WER must fall by at least that much (-1: to zero)
    "decision.max_control_wer_rise": (-1, None, True, False),
    "stats.bootstrap_resamples": (100, None, True, False),
    "stats.confidence": (0, 1, False, False),
    "stats.seed": (0, None, True, False),
    "cycle.shard_size": (1, None, True, False),
    "cycle.batch_size": (1, None, True, False),
    "cycle.approval_timeout_s": (1, None, True, False),
    "cycle.gpu_lease_s": (60, 86400, True, True),
    "cycle.num_nodes": (1, None, True, False),
    "train.replay_fraction": (0, 1, True, False),
    "train.replay_seed": (0, None, True, False),
    "deploy.concurrency": (1, None, True, False),
    "boost.alpha": (0, None, True, False),
    "boost.context_score": (0, None, True, False),
    "boost.depth_scaling": (0, None, True, False),
}
#: Keys whose value is one of a fixed set.
_CHOICES: dict[str, tuple[str, ...]] = {"deploy.protocol": ("http", "grpc"), "cycle.boost": ("off", "first", "always")}
#: Keys whose value must start with one of these (Prefect's async SQLAlchemy drivers).
_PREFIXES: dict[str, tuple[str, ...]] = {"server.database": ("", "postgresql+asyncpg://", "sqlite+aiosqlite:///")}


def _out_of_range(key: str, value: Any) -> str | None:
    """Why `value` is not allowed for `key` (NaN and infinities never are), or None."""
    import math

    if key in _CHOICES and value not in _CHOICES[key]:
        return f"must be one of {', '.join(_CHOICES[key])}, got {value!r}"
    if key in _PREFIXES and value and not value.startswith(_PREFIXES[key][1:]):
        shown = value.split("@")[-1] if "@" in value else value  # never echo a password
        return f"must be a postgresql+asyncpg:// or sqlite+aiosqlite:/// URL, got ...{shown!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"must be a finite number, got {value!r}"
    if key not in _RANGES or not isinstance(value, int | float) or isinstance(value, bool):
        return None
    lo, hi, lo_in, hi_in = _RANGES[key]
    below = lo is not None and (value < lo if lo_in else value <= lo)
    above = hi is not None and (value > hi if hi_in else value >= hi)
    if not (below or above):
        return None
    low = "" if lo is None else f"{'>=' if lo_in else '>'} {lo:g}"
    high = "" if hi is None else f"{'<=' if hi_in else '<'} {hi:g}"
    return f"must be {' and '.join(x for x in (low, high) if x)}, got {value!r}"


def _type_name(tp) -> str:
    if isinstance(tp, types.UnionType):
        return " or ".join(_type_name(t) for t in get_args(tp))
    if get_origin(tp) is tuple:
        return f"a list of {get_args(tp)[0].__name__}"
    return tp.__name__


def _range_problems(cfg: FlywheelConfig) -> list[Problem]:
    checks = [
        (
            cfg.gate.harden_below >= cfg.gate.finetune_above,
            "gate.harden_below",
            f"must be below gate.finetune_above ({cfg.gate.harden_below:g} >= {cfg.gate.finetune_above:g})",
        ),
        (
            cfg.decision.grow_drop >= cfg.decision.keep_drop,
            "decision.grow_drop",
            f"must be below decision.keep_drop ({cfg.decision.grow_drop:g} >= {cfg.decision.keep_drop:g})",
        ),
        (
            cfg.train.replay_fraction > 0 and not cfg.train.replay_manifest,
            "train.replay_fraction",
            "needs train.replay_manifest",
        ),
    ]
    unknown = [c for c in cfg.gate.priority if c not in cfg.manifest.categories]
    checks.append((bool(unknown), "gate.priority", f"not in manifest.categories: {', '.join(unknown)}"))
    return [Problem(line_of(cfg.source, key), key, reason) for failed, key, reason in checks if failed]


def _where(source: ConfigSource | None) -> str:
    return f" in {source.path}" if source else ""


def from_dict(data: dict, source: ConfigSource | None = None) -> FlywheelConfig:
    problems: list[Problem] = []
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key == "hyperparameters":
            if not isinstance(value, dict):
                problems.append(Problem(line_of(source, key), "hyperparameters", "expected a table"))
            else:
                kwargs["hyperparameters"] = dict(value)
        elif key == "workspace":
            if not isinstance(value, str):
                problems.append(Problem(line_of(source, key), "workspace", f"expected a path string, got {value!r}"))
            else:
                kwargs["workspace"] = value
        elif key in _SECTIONS:
            cls = _SECTIONS[key]
            if not isinstance(value, dict):
                problems.append(Problem(line_of(source, key), key, "expected a table"))
                continue
            sect = _check_section(key, cls, value, source)
            problems += sect
            bad = {pr.field.split(".", 1)[1] for pr in sect}
            own, rest = _split_open(cls, value)
            # the valid keys still build the section, so the cross-key checks below see every offender at once
            built = {k: _coerce(_hints(cls)[k], v) for k, v in own.items() if k not in bad}
            kwargs[key] = cls(**built, **({_OPEN: rest} if rest else {}))
        else:
            known = ", ".join(["workspace", "hyperparameters", *_SECTIONS])
            problems.append(Problem(line_of(source, key), key, f"unknown section (known: {known})"))
    cfg = FlywheelConfig(**kwargs, source=source)
    reported = {pr.field for pr in problems}
    problems += [pr for pr in _range_problems(cfg) if pr.field not in reported]
    if problems:
        raise InputError(f"invalid configuration{_where(source)}", problems)
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
    data, source = read_toml(p)
    return from_dict(data, source)


def hyperparameter_error(err: InputError, cfg: FlywheelConfig, flags: dict) -> InputError:
    """A trainer's refusal of merged hyperparameters, each problem located: the file and line of the key, or the
    command-line flag that set it (`flags` won over the file)."""
    problems = [_locate_hyperparameter(pr, cfg.source, flags) for pr in err.problems]
    from_file = any(not pr.field.startswith("--") for pr in problems)
    where = f" in {cfg.source.path}" if cfg.source and from_file else ""
    return InputError(f"{err.summary}{where}", problems)


def _locate_hyperparameter(problem: Problem, source: ConfigSource | None, flags: dict) -> Problem:
    key = problem.field.removeprefix("hyperparameters.")
    if key in flags:
        return Problem(0, _NAMED_FLAGS.get(key, f"--set {key}"), problem.reason)
    return Problem(line_of(source, f"hyperparameters.{key}"), f"hyperparameters.{key}", problem.reason)


#: Hyperparameters that have their own flag on `flywheel train` (others come from `--set key=value`).
_NAMED_FLAGS = {k: "--" + k.replace("_", "-") for k in ("epochs", "lr", "batch_size", "precision", "warmup_steps")}
