"""Triton backend: deploy models to a local tritonserver (Python backend) and score served models.

The rules: docs/design.md#serving.

Registered through the `asr_flywheel` entry-point group. tritonclient and the model libraries are imported only
when a deploy or an endpoint transcription runs.
"""

from asr_flywheel import hookimpl


@hookimpl
def register_deployers():
    from asr_flywheel.backends.triton.plugin import TritonDeployer

    return [TritonDeployer()]


@hookimpl
def register_transcribers():
    from asr_flywheel.backends.triton.endpoint import TritonEndpointTranscriber

    return [TritonEndpointTranscriber()]
