"""The catalogue of known base models (docs/design.md#training), registered as a built-in plugin.

Viability is the methodology's evidence, not a guess: Parakeet-TDT-0.6B-v2 is the verified recipe;
the Nemotron streaming base collapses to all-UNK after the first SFT step; adapter fine-tuning of
TDT/RNNT decoders produces NaN tensors at any learning rate. Plugin authors add entries through the same
`register_base_models` hook (see docs/plugins.md).
"""

from __future__ import annotations

from asr_flywheel import hookimpl
from asr_flywheel.errors import RefusedError
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability

RECOMMENDED_BASE = "nvidia/parakeet-tdt-0.6b-v2"
SFT_METHODS = ("sft",)
ADAPTER_METHODS = ("adapter", "linear_adapter", "linearadapter", "lora")

STREAMING_REFUSAL = (
    "SFT of this cache-aware streaming base collapses to all-UNK predictions after the first training step. "
    "Fine-tune nvidia/parakeet-tdt-0.6b-v2 instead: Riva can chunk a non-streaming model for streaming serving, "
    "so the base does not need to be streaming-native."
)
ADAPTER_REFUSAL = (
    "adapter/LinearAdapter fine-tuning of {decoder} decoders produces NaN tensors at any learning rate "
    "(the adapter-mixin path is broken on TDT/RNNT). Use the stock full SFT recipe (method 'sft'), which is "
    "verified on nvidia/parakeet-tdt-0.6b-v2."
)


def _nemo(name, family, decoder, sft=SftViability.ALLOWED, notes="", **kw) -> BaseModel:
    return BaseModel(name=name, family=family, decoder=decoder, backend="nemo", sft=sft, notes=notes, **kw)


CATALOGUE = [
    _nemo(
        RECOMMENDED_BASE,
        "FastConformer-TDT",
        Decoder.TDT,
        SftViability.RECOMMENDED,
        "verified 0.513 → 0.128 KER in 3 epochs of stock SFT (39-row manifest)",
    ),
    _nemo("nvidia/parakeet-tdt-1.1b", "FastConformer-TDT", Decoder.TDT),
    _nemo("nvidia/parakeet-rnnt-0.6b", "FastConformer-RNNT", Decoder.RNNT),
    _nemo("nvidia/parakeet-rnnt-1.1b", "FastConformer-RNNT", Decoder.RNNT),
    _nemo("nvidia/parakeet-ctc-0.6b", "FastConformer-CTC", Decoder.CTC),
    _nemo("nvidia/parakeet-ctc-1.1b", "FastConformer-CTC", Decoder.CTC),
    _nemo("nvidia/stt_en_conformer_ctc_large", "Conformer-CTC", Decoder.CTC, notes="legacy fallback"),
    _nemo(
        "nvidia/nemotron-speech-streaming-en-0.6b",
        "cache-aware streaming FastConformer-RNNT",
        Decoder.RNNT,
        SftViability.REFUSED,
        "SFT collapses to all-UNK",
        refusal_reason=STREAMING_REFUSAL,
        suggested=RECOMMENDED_BASE,
    ),
    BaseModel(
        name="google/medasr",
        family="Conformer-CTC (Hugging Face LasrForCTC)",
        decoder=Decoder.CTC,
        backend="hf",
        sft=SftViability.ALLOWED,
        notes="gated on the Hub: needs HF_TOKEN",
        gated=True,
    ),
]


@hookimpl
def register_base_models():
    return list(CATALOGUE)


def sft_refusal(entry: BaseModel | None) -> str | None:
    """Why this base is evaluate-only (its catalogue entry refuses SFT), with the suggested alternative; None when
    it may be fine-tuned. The gate, `flywheel train` and the cycle all ask this one function."""
    if entry is None or entry.sft is not SftViability.REFUSED:
        return None
    alt = f" Suggested base: {entry.suggested}." if entry.suggested else ""
    return f"it is evaluate-only (its catalogue entry refuses SFT): {entry.refusal_reason or 'no reason given'}{alt}"


def check_sft_request(base: str, decoder: Decoder, method: str, entry: BaseModel | None = None) -> None:
    """Refuse, before any compute, fine-tuning requests known to fail. Raises RefusedError with the reason."""
    m = method.lower().replace("-", "_")
    refusal = sft_refusal(entry)
    if refusal is not None:
        raise RefusedError(f"refusing to fine-tune {base}: {refusal}")
    if m in ADAPTER_METHODS:
        if decoder in (Decoder.TDT, Decoder.RNNT):
            reason = ADAPTER_REFUSAL.format(decoder=decoder.upper())
            raise RefusedError(f"refusing {method} fine-tuning of {base}: {reason}")
        raise RefusedError(f"refusing {method} fine-tuning of {base}: the flywheel runs stock SFT only (no adapters)")
    if m not in SFT_METHODS:
        raise RefusedError(f"unknown fine-tuning method {method!r} (supported: {', '.join(SFT_METHODS)})")
