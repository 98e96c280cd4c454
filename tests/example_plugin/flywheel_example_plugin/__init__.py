"""An example third-party plugin: adds one base model to the flywheel's catalogue.

It is a separate installable package (see its pyproject.toml) and is proven end to end by
tests/plugins/test_example_plugin.py: once installed, `flywheel models` lists it and
`flywheel train --base example/tiny-ctc` resolves it through the NeMo backend.
"""

from asr_flywheel import hookimpl
from plugins.contracts import BaseModel, Decoder, SftViability


@hookimpl
def register_base_models():
    return [
        BaseModel(
            name="example/tiny-ctc",
            family="Conformer-CTC (example plugin)",
            decoder=Decoder.CTC,
            backend="nemo",
            sft=SftViability.ALLOWED,
            notes="Registered by the example plugin package to show how third parties extend the catalogue.",
        )
    ]
