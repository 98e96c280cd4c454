"""The plugin manager: loads every plugin from the `asr_flywheel` entry-point group and merges hook results.

Built-ins (NeMo, Hugging Face, espeak-ng, the base-model catalogue) are registered through the same
entry points as third-party packages, so a plugin author's package is loaded exactly like ours. Names must be
unique across plugins: a clash is an error naming both plugins, never a silent override.

A plugin that fails to import (or whose hook raises) does not break the verbs that do not need it: the failure is
recorded under the plugin's name, listed by `flywheel models`, and added to any "not found" error it may explain.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache
from importlib.metadata import entry_points
from typing import Any, get_args, get_type_hints

import pluggy

from asr_flywheel._markers import ENTRY_POINT_GROUP, PROJECT_NAME
from asr_flywheel.config import FlywheelConfig, hyperparameter_error
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.plugins import hookspecs
from asr_flywheel.plugins.contracts import (
    BaseModel,
    BaseModelRecipe,
    Deployer,
    Synthesizer,
    Trainer,
    Transcriber,
)


class PluginError(FlywheelError):
    """A plugin is broken (bad return value, duplicate name)."""


@dataclass(frozen=True)
class BrokenPlugin:
    """A plugin that could not be loaded or whose hook failed: what it is and why, for the user to fix."""

    name: str
    target: str
    error: str

    def __str__(self) -> str:
        return f"{self.name} ({self.target}): {self.error}"


class FlywheelPluginManager(pluggy.PluginManager):
    """pluggy's manager plus the plugins that failed, so one broken package never takes every verb down."""

    def __init__(self) -> None:
        super().__init__(PROJECT_NAME)
        self.broken: dict[str, BrokenPlugin] = {}

    def record_broken(self, name: str, target: str, exc: BaseException) -> None:
        self.broken.setdefault(name, BrokenPlugin(name, target, f"{type(exc).__name__}: {exc}"))

    def load_entry_points(self, group: str) -> None:
        """Like pluggy's `load_setuptools_entrypoints`, but an import or registration failure is recorded."""
        for ep in entry_points(group=group):
            if self.get_plugin(ep.name) is not None or self.is_blocked(ep.name) or ep.name in self.broken:
                continue
            try:
                self.register(ep.load(), name=ep.name)
            except Exception as exc:
                self.record_broken(ep.name, ep.value, exc)


def new_plugin_manager(*, load_entry_points: bool = True) -> FlywheelPluginManager:
    pm = FlywheelPluginManager()
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_entry_points(ENTRY_POINT_GROUP)
    return pm


@cache
def get_plugin_manager() -> FlywheelPluginManager:
    """The process-wide plugin manager (entry points are read once); `reset_plugin_manager` forgets it."""
    return new_plugin_manager()


def reset_plugin_manager() -> None:
    """Forget the process-wide manager, so the next use reads the entry points again (tests that install or
    break a plugin)."""
    get_plugin_manager.cache_clear()


@cache
def contract_of(hook_name: str) -> type:
    """The contract type a hook's items must be: the `X` of the hookspec's `-> list[X]` annotation."""
    (kind,) = get_args(get_type_hints(getattr(hookspecs, hook_name))["return"])
    return kind


class Plugins:
    """Typed access to what the plugins registered."""

    def __init__(self, pm: pluggy.PluginManager | None = None):
        self.pm = pm or get_plugin_manager()

    def broken(self) -> list[BrokenPlugin]:
        """Plugins that failed to load or whose hooks raised (so far), by name."""
        broken = getattr(self.pm, "broken", {})
        return [broken[n] for n in sorted(broken)]

    def broken_note(self) -> str:
        """A sentence to add to a "not found" error: what a broken plugin might have provided."""
        broken = self.broken()
        if not broken:
            return ""
        return "; plugin(s) that failed to load: " + "; ".join(str(b) for b in broken)

    def _isolate(self, impl: Any, why: str) -> list:
        """Record a plugin whose hook misbehaved (named, with the reason) and use nothing it returned."""
        if not isinstance(self.pm, FlywheelPluginManager):
            raise PluginError(f"plugin {impl.plugin_name!r}: {why}")
        self.pm.record_broken(impl.plugin_name, f"hook {impl.function.__name__}", PluginError(why))
        return []

    def _call_hook(self, hook_name: str, impl: Any) -> list:
        """One plugin's result of a hook, called through pluggy, checked against the hookspec's annotation: a list
        of contract instances. A bare object, a class instead of an instance, or an object missing the contract's
        methods isolates the plugin (named, with the reason), and nothing it returned is used."""
        kind = contract_of(hook_name)
        try:
            results = self._caller_for(hook_name, impl)()
        except Exception as exc:
            if not isinstance(self.pm, FlywheelPluginManager):
                raise
            self.pm.record_broken(impl.plugin_name, f"hook {hook_name}", exc)
            return []
        result = results[0] if results else None
        if result is None:
            return []
        if not isinstance(result, list | tuple):
            return self._isolate(
                impl, f"{hook_name}() returned a {type(result).__name__}, not a list of {kind.__name__}"
            )
        for item in result:
            if isinstance(item, type):
                return self._isolate(
                    impl, f"{hook_name}() returned the class {item.__name__}; return an instance ({item.__name__}())"
                )
            if not isinstance(item, kind):
                return self._isolate(impl, f"{hook_name}() returned {item!r}, not a {kind.__name__}")
        return list(result)

    def _caller_for(self, hook_name: str, impl: Any) -> Any:
        """The hook's pluggy caller restricted to one implementing plugin (wrappers of any plugin stay in), so each
        plugin's result is known by name and one plugin's failure never hides the others'."""
        impls = getattr(self.pm.hook, hook_name).get_hookimpls()
        others = {i.plugin for i in impls if i is not impl and not (i.hookwrapper or i.wrapper)} - {impl.plugin}
        return self.pm.subset_hook_caller(hook_name, remove_plugins=others)

    def _collect(self, hook_name: str) -> dict[str, tuple[Any, str]]:
        found: dict[str, tuple[Any, str]] = {}
        kind = contract_of(hook_name)
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            if impl.hookwrapper or impl.wrapper:
                continue
            plugin_name = impl.plugin_name
            for item in self._call_hook(hook_name, impl):
                name = item.name
                if name in found:
                    raise PluginError(
                        f"{kind.__name__} {name!r} is registered by both {found[name][1]!r} and {plugin_name!r}"
                    )
                found[name] = (item, plugin_name)
        return found

    def base_models(self) -> dict[str, BaseModel]:
        return {n: replace(m, plugin=p) for n, (m, p) in self._collect("register_base_models").items()}

    def base_model(self, name: str) -> BaseModel | None:
        return self.base_models().get(name)

    def weights(self, model_ref: str) -> str:
        """What a backend loads for `model_ref`: a catalogue entry's weights (local source or hub id), else the ref."""
        entry = self.base_model(model_ref)
        return entry.weights if entry else model_ref

    def trainers(self) -> dict[str, Trainer]:
        return {n: t for n, (t, _) in self._collect("register_trainers").items()}

    def transcribers(self) -> dict[str, Transcriber]:
        return {n: t for n, (t, _) in self._collect("register_transcribers").items()}

    def deployers(self) -> dict[str, Deployer]:
        return {n: d for n, (d, _) in self._collect("register_deployers").items()}

    def synthesizers(self) -> dict[str, Synthesizer]:
        return {n: s for n, (s, _) in self._collect("register_synthesizers").items()}

    def base_recipes(self) -> dict[str, BaseModelRecipe]:
        return {n: r for n, (r, _) in self._collect("register_base_recipes").items()}

    def _pick(self, kind: str, registry: dict, name: str):
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none installed"
            raise InputError(f"unknown {kind} {name!r} (available: {known}){self.broken_note()}")
        return registry[name]

    def trainer(self, name: str) -> Trainer:
        return self._pick("trainer backend", self.trainers(), name)

    def deployer(self, name: str) -> Deployer:
        return self._pick("deployer", self.deployers(), name)

    def synthesizer(self, name: str) -> Synthesizer:
        return self._pick("synthesizer", self.synthesizers(), name)

    def base_recipe(self, name: str) -> BaseModelRecipe:
        return self._pick("base-model recipe", self.base_recipes(), name)

    def transcriber_for(self, model_ref: str, backend: str | None = None) -> Transcriber:
        """The transcriber for a model: the catalogue entry's backend, an explicit one, or whichever claims it."""
        transcribers = self.transcribers()
        entry = self.base_model(model_ref)
        chosen = backend or (entry.backend if entry else None)
        if chosen:
            return self._pick("transcriber backend", transcribers, chosen)
        claiming = [t for t in transcribers.values() if t.claims(model_ref)]
        if not claiming and "://" in model_ref:
            raise InputError(
                f"no installed transcriber serves the endpoint {model_ref!r} (scheme "
                f"{model_ref.split('://', 1)[0]}://); endpoint schemes come from the deploy plugins, e.g. "
                f"triton://HOST:PORT/NAME, tritongrpc://HOST:PORT/NAME, riva://HOST:PORT{self.broken_note()}"
            )
        if not claiming:
            raise InputError(
                f"no installed backend can load {model_ref!r}: pass a .nemo file, a Hugging Face model directory, "
                f"or a catalogue name (see `flywheel models`); backends: {', '.join(sorted(transcribers)) or 'none'}"
                f"{self.broken_note()}"
            )
        return claiming[0]

    def resolve_base(self, model_ref: str, backend: str | None = None) -> tuple[BaseModel, str]:
        """(catalogue entry or description of a local model, backend name) for a base model reference."""
        entry = self.base_model(model_ref)
        if entry is not None:
            if backend and backend != entry.backend:
                raise InputError(f"{model_ref} is a {entry.backend} model; --backend {backend} cannot train it")
            return entry, entry.backend
        trainers = self.trainers()
        if backend:
            return self.trainer(backend).describe(model_ref), backend
        for name, trainer in trainers.items():
            if trainer.claims(model_ref):
                return trainer.describe(model_ref), name
        raise InputError(
            f"unknown base model {model_ref!r}: not in the catalogue (`flywheel models`) and not a local model any "
            f"installed backend recognises ({', '.join(sorted(trainers)) or 'none'}); pass a .nemo file or a "
            f"Hugging Face model directory, or --backend{self.broken_note()}"
        )

    def check_hyperparameters(self, backend: str, overrides: dict) -> dict:
        """The backend's hyperparameters with `overrides` merged in, checked without any compute.

        Raises `InputError` for unknown keys or invalid values (from the trainer's own `check_hyperparameters`).
        A third-party trainer without that method is checked only when it trains.
        """
        trainer = self.trainer(backend)
        check = getattr(trainer, "check_hyperparameters", None)
        return dict(check(dict(overrides))) if callable(check) else dict(overrides)


def check_hyperparameters(
    cfg: FlywheelConfig, backend: str, overrides: dict | None = None, *, plugins: Plugins | None = None
) -> dict[str, Any]:
    """The trainer overrides for one run, checked before any compute: `[hyperparameters]` from the file, then
    `overrides` (CLI flags), which win.

    The backend's trainer plugin decides what is known and valid (`Plugins.check_hyperparameters`); each problem
    is reported with the file and line of the key, or as a command-line value. Returns the merged overrides, which
    is what `TrainRequest.hyperparameters` takes. Raises `InputError` (exit 2) listing every offender.
    """
    flags = dict(overrides or {})
    merged = {**cfg.hyperparameters, **flags}
    try:
        (plugins or Plugins()).check_hyperparameters(backend, merged)
    except InputError as err:
        raise hyperparameter_error(err, cfg, flags) from None
    return merged
