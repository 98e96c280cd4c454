"""An example third-party plugin: adds one base model to the flywheel's catalogue.

It is a separate installable package (see its pyproject.toml: one entry point is the whole registration) and is
proven end to end by tests/plugins/test_example_plugin.py: once installed, `flywheel models` lists it and
`flywheel eval --model example/tiny-ctc` / `flywheel train --base example/tiny-ctc` load its weights through the
built-in NeMo backend. The weights are a local .nemo file (`source`), because this machine cannot download.
"""

import os
from pathlib import Path

from asr_flywheel.plugins import BaseModel, Decoder, SftViability, hookimpl

#: Where the example's weights live; tests build a tiny model here (override with FLYWHEEL_EXAMPLE_MODEL).
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "tiny-ctc.nemo"


@hookimpl
def register_base_models():
    return [
        BaseModel(
            name="example/tiny-ctc",
            family="Conformer-CTC (example plugin)",
            decoder=Decoder.CTC,
            backend="nemo",
            sft=SftViability.ALLOWED,
            notes="registered by the example plugin package",
            source=os.environ.get("FLYWHEEL_EXAMPLE_MODEL", str(DEFAULT_WEIGHTS)),
        )
    ]
