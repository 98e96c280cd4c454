"""`cmu/pocketsphinx-en-us`: an evaluate-only reference recogniser that no one here trained.

CMU PocketSphinx with the en-US acoustic model, language model and dictionary its wheel ships. It was trained on
human speech, so it is the flywheel's independent judge: `flywheel build` asks it whether each synthesised clip's
carrier words are intelligible, and `flywheel eval --model cmu/pocketsphinx-en-us` puts a baseline on the
leaderboard that no fine-tuning here could have shaped. Its catalogue entry refuses SFT (an HMM recogniser with an
n-gram LM has no SFT recipe in the flywheel), so `train` and `cycle` refuse it before any compute.

Written the way docs/plugins.md tells a third-party author to: one base model, one transcriber, one entry point.
"""

from __future__ import annotations

from asr_flywheel.backends.pocketsphinx.names import BACKEND, MODEL
from asr_flywheel.plugins import BaseModel, Decoder, SftViability, hookimpl

REFUSAL = (
    "PocketSphinx is an HMM recogniser with an n-gram language model; the flywheel has no fine-tuning recipe for "
    "it (its acoustic model adapts with CMU's own tools, not SFT). Score it as an independent reference."
)


@hookimpl
def register_base_models():
    return [
        BaseModel(
            name=MODEL,
            family="PocketSphinx 5 (CMU, HMM + n-gram LM)",
            decoder=Decoder.OTHER,
            backend=BACKEND,
            sft=SftViability.REFUSED,
            refusal_reason=REFUSAL,
            suggested="nvidia/parakeet-tdt-0.6b-v2",
            notes="evaluate-only: the build's judge of synthesised speech; ships with its wheel",
        )
    ]


@hookimpl
def register_transcribers():
    from asr_flywheel.backends.pocketsphinx.transcriber import PocketSphinxTranscriber

    return [PocketSphinxTranscriber()]
