"""Riva backend: build/deploy commands for a NeMo model (riva_deploy.sh + riva_deploy.json) and scoring of a
running Riva endpoint with `riva.client` (docs/design.md#serving). riva.client is imported only when an
endpoint is scored."""

from asr_flywheel import hookimpl


@hookimpl
def register_deployers():
    from asr_flywheel.backends.riva.deployer import RivaDeployer

    return [RivaDeployer()]


@hookimpl
def register_transcribers():
    from asr_flywheel.backends.riva.endpoint import RivaEndpointTranscriber

    return [RivaEndpointTranscriber()]
