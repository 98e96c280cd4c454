"""Hook specifications: the whole plugin contract in one module (as pytest and datasette do).

Every hook returns a list of contract objects (see `plugins.contracts`), as its annotation says; the plugin
manager calls each hook through pluggy (so `pm.trace` and hook wrappers see every call), checks each plugin's
result against the annotation (a wrong type names the plugin and isolates it), merges the lists from all plugins
and refuses duplicates by name. Implement hooks with the marker from the core::

    from asr_flywheel import hookimpl

    @hookimpl
    def register_base_models() -> list[BaseModel]:  # type: ignore[empty-body]
        return [BaseModel(name="acme/asr-1b", ...)]

Hook implementations must be cheap to call: return descriptors and import heavy libraries (torch,
NeMo, transformers) only when `train`/`load`/`deploy` actually runs.
"""

from __future__ import annotations

import pluggy

from asr_flywheel import PROJECT_NAME
from asr_flywheel.plugins.contracts import BaseModel, BaseModelRecipe, Deployer, Synthesizer, Trainer, Transcriber

hookspec = pluggy.HookspecMarker(PROJECT_NAME)


@hookspec
def register_base_models() -> list[BaseModel]:  # type: ignore[empty-body]
    """Return a list of `BaseModel` catalogue entries (name, family, decoder, backend, SFT viability)."""


@hookspec
def register_trainers() -> list[Trainer]:  # type: ignore[empty-body]
    """Return a list of `Trainer` objects, each with a unique `name` (the backend name, e.g. "nemo").

    A trainer should also have `check_hyperparameters(overrides: dict) -> dict` (merged over its defaults, an
    `InputError` per unknown or invalid key, no compute): the CLI and the cycle call it before any work starts.
    """


@hookspec
def register_transcribers() -> list[Transcriber]:  # type: ignore[empty-body]
    """Return a list of `Transcriber` objects (offline inference backends)."""


@hookspec
def register_deployers() -> list[Deployer]:  # type: ignore[empty-body]
    """Return a list of `Deployer` objects (e.g. "triton", "riva"): `check_target`, `deploy`, `rollback`,
    `versions`, plus the optional `Server` methods (`serve_start|stop|status`) for a local serving process.
    Flows reach deploy backends only through these (docs/plugins.md, "Writing a deployer")."""


@hookspec
def register_synthesizers() -> list[Synthesizer]:  # type: ignore[empty-body]
    """Return a list of `Synthesizer` objects (text-to-speech used to grow manifests)."""


@hookspec
def register_base_recipes() -> list[BaseModelRecipe]:  # type: ignore[empty-body]
    """Return a list of `BaseModelRecipe` objects: recipes that make a base model from scratch (corpus,
    tokenizer, pretraining), used by `flywheel base-model` and the demo when no model hub is reachable."""
