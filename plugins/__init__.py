"""The plugin contract: pluggy hook specifications, the plugin manager, entry-point loading and the
catalogue of known base models. Implementations live in `backends/` (built-ins) or in any installed
package that declares an `asr_flywheel` entry point.

Installed as `asr_flywheel.plugins`. A plugin author imports everything from here::

    from asr_flywheel.plugins import hookimpl, BaseModel, Decoder, SftViability, InputError, RefusedError
"""

from asr_flywheel._markers import hookimpl
from asr_flywheel.errors import FlywheelError, InputError, Problem, RefusedError
from asr_flywheel.plugins.contracts import (
    BaseModel,
    BaseModelRecipe,
    BoostingTranscriber,
    Decoder,
    Deployer,
    DeployRecord,
    GeneralRows,
    LoadedModel,
    LocalServer,
    MadeBase,
    ServedVersions,
    Server,
    SftViability,
    Synthesizer,
    Trainer,
    TrainRequest,
    TrainResult,
    Transcriber,
)

__all__ = [
    "BaseModel",
    "BaseModelRecipe",
    "BoostingTranscriber",
    "Decoder",
    "DeployRecord",
    "Deployer",
    "FlywheelError",
    "GeneralRows",
    "InputError",
    "LoadedModel",
    "LocalServer",
    "MadeBase",
    "Problem",
    "RefusedError",
    "ServedVersions",
    "Server",
    "SftViability",
    "Synthesizer",
    "TrainRequest",
    "TrainResult",
    "Trainer",
    "Transcriber",
    "hookimpl",
]
