"""The build step: resolve the synthesizer plugin by name, then run the core build (SPEC §12).

The CLI verb `flywheel build` and the demo both call `build_manifest`, so there is one path from a term CSV to
a manifest. After an append, `flywheel publish MANIFEST` (or a running `flywheel watch`) announces the growth.
"""

from __future__ import annotations

from pathlib import Path

from asr_flywheel.build.builder import run_build
from asr_flywheel.build.options import BuildOptions, BuildReport
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.plugins.contracts import ProgressFn
from asr_flywheel.plugins.manager import Plugins


def build_manifest(
    terms_csv: str | Path,
    out_manifest: str | Path,
    options: BuildOptions | None = None,
    append: bool = False,
    *,
    config: FlywheelConfig | None = None,
    progress: ProgressFn | None = None,
) -> BuildReport:
    """Build (or with `append`, grow) `out_manifest` from `terms_csv` with the synthesizer `options.synthesizer`."""
    opts = options or BuildOptions()
    synthesizer = Plugins().synthesizer(opts.synthesizer)
    return run_build(
        terms_csv, out_manifest, opts, synthesizer=synthesizer, config=config, append=append, progress=progress
    )
