"""A cycle that fails for any reason ends `"status": "failed"` with the reason, frees the GPU slot, and a rerun with
corrected inputs proceeds. Real Prefect server, real tiny NeMo model, plugins registered in the live manager."""

from __future__ import annotations

import json

import pytest

from asr_flywheel import hookimpl
from asr_flywheel.flows import gpu_slot
from asr_flywheel.flows.transcription import release_models
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability
from asr_flywheel.plugins.manager import get_plugin_manager
from helpers import write_tiny_cycle_config


def record(ws, n: int = 1) -> dict:
    return json.loads((ws / "cycles" / f"cycle-{n:04d}" / "cycle.json").read_text())


@pytest.fixture
def faulty_plugin(nemo_tiny_models):
    """`acme/crash-train` (its trainer raises mid-training) and `acme/crash-transcribe` (its transcriber raises
    on the first batch); both otherwise use the tiny CTC model through the NeMo transcriber."""
    from asr_flywheel.backends.nemo.transcriber import NemoTranscriber

    weights = str(nemo_tiny_models["ctc"])

    class CrashTrainer:
        name = "acme"

        def claims(self, model_ref):
            return False

        def describe(self, model_ref):
            raise NotImplementedError

        def train(self, request):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")

    class Model:
        def __init__(self, crash):
            self.inner, self.crash = NemoTranscriber().load(weights), crash
            self.name, self.decoder = self.inner.name, self.inner.decoder

        def transcribe(self, paths, *, batch_size=16, progress=None):
            if self.crash:
                raise OSError("decoder service hung up")
            return self.inner.transcribe(paths, batch_size=batch_size, progress=progress)

    class Transcriber:
        name = "acme"

        def claims(self, model_ref):
            return False

        def load(self, model_ref):
            return Model(crash=model_ref == "acme/crash-transcribe")

    class Plugin:
        @hookimpl
        def register_base_models(self):
            return [
                BaseModel(n, "x", Decoder.CTC, "acme", SftViability.ALLOWED, source=weights)
                for n in ("acme/crash-train", "acme/crash-transcribe")
            ]

        @hookimpl
        def register_trainers(self):
            return [CrashTrainer()]

        @hookimpl
        def register_transcribers(self):
            return [Transcriber()]

    pm = get_plugin_manager()
    name = pm.register(Plugin(), name="acme-faulty")
    yield
    pm.unregister(name=name)
    release_models()


@pytest.mark.parametrize(
    "base, step, reason",
    [
        ("acme/crash-train", "train", "RuntimeError: CUDA error: an illegal memory access"),
        ("acme/crash-transcribe", "baseline", "OSError: decoder service hung up"),
    ],
)
def test_a_failed_cycle_is_recorded_frees_the_slot_and_a_corrected_rerun_completes(
    prefect_server, faulty_plugin, nemo_tiny_models, tiny_dataset, tmp_path, base, step, reason
):
    from asr_flywheel.flows.cycle import flywheel_cycle

    ws = tmp_path / "ws"
    config = write_tiny_cycle_config(tmp_path / "fw.toml", ws, base, epochs=1, cycle={"gpu_slot": f"gpu-{step}"})
    with pytest.raises(Exception, match=reason.split(": ", 1)[1]):
        flywheel_cycle(manifest=str(tiny_dataset), config_path=str(config))
    failed = record(ws)
    assert failed["status"] == "failed" and failed["reason"].startswith(reason)
    assert failed["failed_steps"] == [step] and failed["running"] == {}
    assert gpu_slot.slot_state(f"gpu-{step}").active == 0  # the slot is free for everyone else

    result = flywheel_cycle(
        manifest=str(tiny_dataset), base_model=str(nemo_tiny_models["ctc"]), config_path=str(config)
    )
    assert result.status == "complete" and result.cycle == 1  # the same cycle, resumed with the corrected base
    assert record(ws)["status"] == "complete"
