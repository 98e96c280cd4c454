"""Deploy, verify, roll back: the plain functions `flywheel deploy|rollback` and the cycle's deploy step both call.

Served parity (docs/design.md#serving): after a deploy, the cycle's validation rows are scored through the endpoint
by the same eval step as offline eval, and every served transcript must equal its `offline_hyps.jsonl` line. Any
difference is a serving problem (preprocessing, resampling, decoding), named row by row; with `[deploy]
require_parity` the endpoint is rolled back so the previous version keeps serving. Every deploy and rollback is
appended to `<registry>/deploys.jsonl` (model, version, endpoint, time, parity result).
"""

from __future__ import annotations

import fcntl
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.boost import BoostList
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.flows.parity import ParityReport, check_parity, offline_rows
from asr_flywheel.plugins.contracts import Decoder, Deployer, DeployRecord

DEPLOY_LOG = "deploys.jsonl"


@dataclass
class DeployOutcome:
    """What the cycle records: `ok` only when the deploy and (where required) parity succeeded."""

    ok: bool
    deployer: str
    model_path: str
    version: str | None = None
    endpoint: str | None = None
    reason: str = ""
    record: dict | None = None
    parity: ParityReport | None = None
    rolled_back_to: str | None = None
    files: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["parity"] = self.parity.to_dict() if self.parity else None
        return d


def log_event(registry_dir: str | Path, **event) -> None:
    """Append one deploy/rollback event under an exclusive lock (concurrent cycles never interleave lines)."""
    root = Path(registry_dir)
    root.mkdir(parents=True, exist_ok=True)
    line = fio.dumps_json({"at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **event}, indent=False)
    with open(root / DEPLOY_LOG, "ab") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.write(line.rstrip(b"\n") + b"\n")


def deploy_events(registry_dir: str | Path) -> list[dict]:
    path = Path(registry_dir) / DEPLOY_LOG
    return fio.read_jsonl(path) if path.is_file() else []


def deployer_plugin(name: str | None) -> Deployer:
    """The deployer plugin by name (InputError listing the installed ones when unknown or not given)."""
    from asr_flywheel.plugins.manager import Plugins

    if not name:
        raise InputError("no deployer given (`--to`, or `[cycle] deployer` in the configuration)")
    return Plugins().deployer(name)


def model_decoder(model_path: str) -> tuple[Decoder, str]:
    """(decoder, backend) read from the model itself by the trainer plugin that recognises it."""
    from asr_flywheel.plugins.manager import Plugins

    if not Path(model_path).exists():
        raise InputError(f"model not found: {model_path}")
    entry, backend = Plugins().resolve_base(str(model_path))
    return entry.decoder, backend


def rollback_model(deployer: str, options: dict, to_version: int | str | None = None) -> DeployRecord:
    """Serve an earlier version through the deployer plugin; `options` as its `check_target` returned them."""
    target = dict(options)
    return deployer_plugin(deployer).rollback(target.pop("name"), to_version=to_version, **target)


def deploy_and_verify(
    model_path: str | Path,
    validation_manifest: str | Path | None,
    offline_hyps: str | Path | None,
    cfg: FlywheelConfig,
    *,
    out_dir: str | Path,
    deployer: str | None = None,
    registry_dir: str | Path | None = None,
    boost: BoostList | None = None,
    **overrides,
) -> DeployOutcome:
    """Deploy → served parity on the validation rows → (roll back on failure). Never raises for a failed deploy
    or parity: the outcome says why, so the cycle can keep the previous champion and report it. Bad input
    (missing model, bad options) still raises InputError before anything ships. Without a validation manifest
    and offline hyps (a manual `flywheel deploy`), parity is skipped and says so."""
    name = deployer or cfg.cycle.deployer
    plugin = deployer_plugin(name)
    out = Path(out_dir)
    registry = Path(registry_dir) if registry_dir else Path(cfg.workspace) / "registry"
    options = plugin.check_target(cfg, **overrides)
    if boost is not None:  # a version is the model plus its list: a deployer that drops the list is refused
        if not getattr(plugin, "ships_boost_lists", False):
            raise InputError(f"the {name} deployer cannot ship a boost list (no ships_boost_lists; docs/plugins.md)")
        options["boost"] = boost
    decoder, backend = model_decoder(str(model_path))  # a missing or unrecognised model is bad input
    if validation_manifest is not None and offline_hyps is not None:
        offline_rows(validation_manifest, offline_hyps, cfg)  # so are parity rows that do not match their hyps
    try:
        record = plugin.deploy(str(model_path), decoder=decoder, out_dir=out, backend=backend, **options)
    except InputError:
        raise
    except FlywheelError as exc:
        outcome = DeployOutcome(False, name, str(model_path), reason=f"deploy failed: {exc}")
        return _finish(outcome, registry, out)
    outcome = DeployOutcome(True, name, str(model_path), record.version, record.endpoint, record=asdict(record))
    if record.endpoint is None:
        outcome.reason = f"{name} wrote build files, no live endpoint: served parity runs once it serves"
        return _finish(outcome, registry, out)
    if validation_manifest is None or offline_hyps is None:
        outcome.reason = f"version {record.version} serves at {record.endpoint}; parity not checked (no rows given)"
        return _finish(outcome, registry, out)
    try:
        outcome.parity = check_parity(record.endpoint, validation_manifest, offline_hyps, cfg, out / "served")
    except FlywheelError as exc:  # the endpoint failed some clips: a serving problem like any other difference
        outcome.ok, outcome.reason = False, f"served parity could not run: {exc}"
        outcome.rolled_back_to = _roll_back(name, record, options)
        return _finish(outcome, registry, out)
    outcome.files += outcome.parity.files
    if outcome.parity.ok:
        outcome.reason = f"version {record.version} serves at {record.endpoint}; parity holds on every row"
    elif cfg.deploy.require_parity:
        outcome.ok = False
        outcome.reason = f"served parity failed: {outcome.parity.summary}"
        outcome.rolled_back_to = _roll_back(name, record, options)
        if outcome.rolled_back_to:
            outcome.reason += f"; rolled back to version {outcome.rolled_back_to}"
    else:
        outcome.reason = f"served parity failed (not required): {outcome.parity.summary}"
    return _finish(outcome, registry, out)


def _roll_back(deployer: str, record: DeployRecord, options: dict) -> str | None:
    previous = record.previous_version
    if not previous:
        return None
    try:
        return rollback_model(deployer, options, previous).version
    except FlywheelError as exc:
        return f"(rollback failed: {exc})"


def _finish(outcome: DeployOutcome, registry: Path, out: Path) -> DeployOutcome:
    path = fio.write_json(out / "deploy_outcome.json", outcome.to_dict())
    outcome.files.append(str(path))
    log_event(
        registry,
        action="deploy",
        ok=outcome.ok,
        deployer=outcome.deployer,
        model=outcome.model_path,
        version=outcome.version,
        endpoint=outcome.endpoint,
        parity=None if outcome.parity is None else outcome.parity.ok,
        rolled_back_to=outcome.rolled_back_to,
        reason=outcome.reason,
    )
    return outcome
