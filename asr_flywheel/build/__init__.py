"""Growing manifests by synthesis: terms → sentences → pronunciations → audio + real noise → judged rows.

The rules: docs/design.md#building-manifests.

Public API (imported lazily so `flywheel --help` does not load numpy):

- `run_build(terms_csv, out_manifest, options, synthesizer=..., config=None, append=False)` → `BuildReport`
  (core: the caller passes a synthesizer object; `asr_flywheel.flows.building.build_manifest` resolves it by
  plugin name and is what the CLI and the demo call);
- `BuildOptions`, `BuildReport`, `Pronunciation`;
- `carrier_templates(context=None, category=None)` and `fill(template, words)`: the shipped carrier sentences.
"""

from __future__ import annotations

from importlib import import_module

_EXPORTS = {
    "run_build": "asr_flywheel.build.builder",
    "BuildError": "asr_flywheel.build.render",
    "BuildOptions": "asr_flywheel.build.options",
    "BuildReport": "asr_flywheel.build.options",
    "Pronunciation": "asr_flywheel.build.phonemes",
    "carrier_templates": "asr_flywheel.build.templates",
    "fill": "asr_flywheel.build.templates",
    "TEMPLATES": "asr_flywheel.build.templates",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
