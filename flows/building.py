"""The build step: resolve the synthesizer engines and the judge through their plugins, then run the core build.

The CLI verb `flywheel build` and the demo both call `build_manifest`, so there is one path from a term CSV to
a manifest. After an append, `flywheel publish MANIFEST` (or a running `flywheel watch`) announces the growth.
"""

from __future__ import annotations

from pathlib import Path

from asr_flywheel.build.builder import run_build
from asr_flywheel.build.options import BuildOptions, BuildReport
from asr_flywheel.build.voices import Engines, engine_name
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.plugins.contracts import ProgressFn
from asr_flywheel.plugins.manager import Plugins


def engines(default: str = "espeak-ng") -> Engines:
    """Every installed synthesizer, by the engine prefix of its voice ids; bare ids go to `default`'s engine."""
    plugins = Plugins()
    return Engines(
        {engine_name(s): s for s in plugins.synthesizers().values()}, engine_name(plugins.synthesizer(default))
    )


def build_manifest(
    terms_csv: str | Path,
    out_manifest: str | Path,
    options: BuildOptions | None = None,
    append: bool = False,
    *,
    config: FlywheelConfig | None = None,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build (or with `append`, grow) `out_manifest` from `terms_csv`, each new clip heard by `options.judge`."""
    from asr_flywheel.flows.transcription import load_model

    opts = options or BuildOptions()
    synthesizers = engines(opts.synthesizer)
    judge = load_model(opts.judge) if opts.judge else None
    return run_build(
        terms_csv,
        out_manifest,
        opts,
        synthesizer=synthesizers,
        config=config,
        append=append,
        progress=progress,
        judge=judge,
    )
