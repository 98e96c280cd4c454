"""Secrets (HF token, NGC / NVIDIA API keys): read from the environment, never written anywhere.

The flow layer may fill these variables from Prefect Secret blocks before a run (see flows.cycle); backends
only ever read the environment, so no secret travels as a flow parameter (parameters are stored and shown in
the Prefect UI). `redact` masks current secret values in any text the flywheel writes.
"""

from __future__ import annotations

import os

#: Environment variables holding secrets, and the Prefect Secret block that can supply each.
SECRET_ENV_VARS = {
    "HF_TOKEN": "hf-token",
    "HUGGING_FACE_HUB_TOKEN": "hf-token",
    "NGC_API_KEY": "ngc-api-key",
    "NGC_CLI_API_KEY": "ngc-api-key",
    "NVIDIA_API_KEY": "nvidia-api-key",
}
MASK = "***"


def get_secret(name: str) -> str | None:
    value = os.environ.get(name)
    return value if value else None


def hf_token() -> str | None:
    return get_secret("HF_TOKEN") or get_secret("HUGGING_FACE_HUB_TOKEN")


def secret_values() -> list[str]:
    """Current secret values (longest first, so overlapping secrets are fully masked)."""
    vals = {v for k in SECRET_ENV_VARS if (v := get_secret(k)) and len(v) >= 4}
    return sorted(vals, key=len, reverse=True)


def redact(text: str) -> str:
    for v in secret_values():
        text = text.replace(v, MASK)
    return text
