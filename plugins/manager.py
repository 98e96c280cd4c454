"""The plugin manager: loads every plugin from the `asr_flywheel` entry-point group and merges hook results.

Built-ins (NeMo, Hugging Face, espeak-ng, the base-model catalogue) are registered through the same
entry points as third-party packages, so a plugin author's package is loaded exactly like ours. Names must be
unique across plugins: a clash is an error naming both plugins, never a silent override.
"""

from __future__ import annotations

from dataclasses import replace
from functools import cache

import pluggy

from asr_flywheel._markers import ENTRY_POINT_GROUP, PROJECT_NAME
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.plugins import hookspecs
from asr_flywheel.plugins.contracts import BaseModel, Deployer, Synthesizer, Trainer, Transcriber


class PluginError(FlywheelError):
    """A plugin is broken (bad return value, duplicate name)."""


def new_plugin_manager(*, load_entry_points: bool = True) -> pluggy.PluginManager:
    pm = pluggy.PluginManager(PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    if load_entry_points:
        pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP)
    return pm


@cache
def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide plugin manager (entry points are read once)."""
    return new_plugin_manager()


class Plugins:
    """Typed access to what the plugins registered."""

    def __init__(self, pm: pluggy.PluginManager | None = None):
        self.pm = pm or get_plugin_manager()

    def _collect(self, hook_name: str, kind: type) -> dict[str, tuple[object, str]]:
        found: dict[str, tuple[object, str]] = {}
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            plugin_name = impl.plugin_name
            items = impl.function() or []
            for item in items:
                if not isinstance(item, kind):
                    raise PluginError(f"plugin {plugin_name!r}: {hook_name} returned {item!r}, not a {kind.__name__}")
                name = item.name
                if name in found:
                    raise PluginError(
                        f"{kind.__name__} {name!r} is registered by both {found[name][1]!r} and {plugin_name!r}"
                    )
                found[name] = (item, plugin_name)
        return found

    def base_models(self) -> dict[str, BaseModel]:
        return {n: replace(m, plugin=p) for n, (m, p) in self._collect("register_base_models", BaseModel).items()}

    def base_model(self, name: str) -> BaseModel | None:
        return self.base_models().get(name)

    def weights(self, model_ref: str) -> str:
        """What a backend loads for `model_ref`: a catalogue entry's weights (local source or hub id), else the ref."""
        entry = self.base_model(model_ref)
        return entry.weights if entry else model_ref

    def trainers(self) -> dict[str, Trainer]:
        return {n: t for n, (t, _) in self._collect("register_trainers", Trainer).items()}

    def transcribers(self) -> dict[str, Transcriber]:
        return {n: t for n, (t, _) in self._collect("register_transcribers", Transcriber).items()}

    def deployers(self) -> dict[str, Deployer]:
        return {n: d for n, (d, _) in self._collect("register_deployers", Deployer).items()}

    def synthesizers(self) -> dict[str, Synthesizer]:
        return {n: s for n, (s, _) in self._collect("register_synthesizers", Synthesizer).items()}

    @staticmethod
    def _pick(kind: str, registry: dict, name: str):
        if name not in registry:
            known = ", ".join(sorted(registry)) or "none installed"
            raise InputError(f"unknown {kind} {name!r} (available: {known})")
        return registry[name]

    def trainer(self, name: str) -> Trainer:
        return self._pick("trainer backend", self.trainers(), name)

    def deployer(self, name: str) -> Deployer:
        return self._pick("deployer", self.deployers(), name)

    def synthesizer(self, name: str) -> Synthesizer:
        return self._pick("synthesizer", self.synthesizers(), name)

    def transcriber_for(self, model_ref: str, backend: str | None = None) -> Transcriber:
        """The transcriber for a model: the catalogue entry's backend, an explicit one, or whichever claims it."""
        transcribers = self.transcribers()
        entry = self.base_model(model_ref)
        chosen = backend or (entry.backend if entry else None)
        if chosen:
            return self._pick("transcriber backend", transcribers, chosen)
        claiming = [t for t in transcribers.values() if t.claims(model_ref)]
        if not claiming:
            raise InputError(
                f"no installed backend can load {model_ref!r}: pass a .nemo file, a Hugging Face model directory, "
                f"or a catalogue name (see `flywheel models`); backends: {', '.join(sorted(transcribers)) or 'none'}"
            )
        return claiming[0]
