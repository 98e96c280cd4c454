"""An example third-party plugin: one base model the flywheel can fine-tune, and one it can only evaluate.

It is a separate installable package (see its pyproject.toml: one entry point is the whole registration) and is
proven end to end by tests/plugins/test_example_plugin.py:

- `example/tiny-ctc` is a catalogue entry whose weights (a local .nemo file, `source`, because this machine
  cannot download) the built-in NeMo backend loads: `flywheel eval` and `flywheel train` both work with it.
- `example/vendor-transcripts` is an evaluate-only model with its own transcriber: the transcripts a vendor's
  speech service returned, stored next to each clip as `<clip>.vendor.txt`. It puts a service you cannot train on
  the same leaderboard as your own models. Its catalogue entry refuses SFT with the reason, so `flywheel train`
  and `flywheel cycle` refuse it before any compute, and the gate answers EVALUATE_ONLY instead of FINETUNE.
  Copy this transcriber to wrap any recogniser (a local binary, an HTTP API): `load` returns an object with
  `name`, `decoder` and `transcribe(paths, *, batch_size, progress) -> list[str]`, one transcript per path.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

from asr_flywheel.plugins import BaseModel, Decoder, InputError, SftViability, hookimpl

#: Where the example's weights live; tests build a tiny model here (override with FLYWHEEL_EXAMPLE_MODEL).
DEFAULT_WEIGHTS = Path(__file__).parent / "weights" / "tiny-ctc.nemo"
VENDOR_MODEL = "example/vendor-transcripts"
VENDOR_SUFFIX = ".vendor.txt"
VENDOR_REFUSAL = (
    "its transcripts come from a vendor's speech service, whose weights are not ours to fine-tune; score it to "
    "compare, and fine-tune a model you own"
)


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
        ),
        BaseModel(
            name=VENDOR_MODEL,
            family="vendor transcripts (example plugin)",
            decoder=Decoder.OTHER,
            backend="example-vendor",
            sft=SftViability.REFUSED,
            refusal_reason=VENDOR_REFUSAL,
            suggested="nvidia/parakeet-tdt-0.6b-v2",
            notes="evaluate-only: reads <clip>.vendor.txt",
        ),
    ]


@hookimpl
def register_transcribers():
    return [VendorTranscriber()]  # an instance, not the class


class VendorTranscriber:
    """The `Transcriber` contract: a name, which model references it claims, and `load`."""

    name = "example-vendor"

    def claims(self, model_ref: str) -> bool:
        return model_ref == VENDOR_MODEL

    def load(self, model_ref: str) -> VendorTranscripts:
        if model_ref != VENDOR_MODEL:
            raise InputError(f"{self.name} loads only {VENDOR_MODEL}, not {model_ref!r}")
        return VendorTranscripts()


class VendorTranscripts:
    """The `LoadedModel` contract: `name`, `decoder`, and `transcribe` returning one str per path, in order."""

    name = VENDOR_MODEL
    decoder = Decoder.OTHER

    def transcribe(
        self,
        audio_paths: Sequence[str],
        *,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        sidecars = [Path(p).with_suffix(VENDOR_SUFFIX) for p in audio_paths]
        missing = [str(s) for s in sidecars if not s.is_file()]
        if missing:  # every missing file is named, never an empty transcript that would score as a deletion
            shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
            raise InputError(f"no vendor transcript for {len(missing)} of {len(sidecars)} clip(s): {shown}")
        hyps = [s.read_text(encoding="utf-8").strip() for s in sidecars]
        if progress is not None:
            progress(len(hyps), len(hyps))
        return hyps
