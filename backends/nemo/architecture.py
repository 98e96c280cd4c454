"""Read a NeMo model's architecture from its config, without torch: decoder type, family, streaming.

A `.nemo` file is a tar archive holding `model_config.yaml`; reading it takes milliseconds, so refusals
(streaming bases, adapters on TDT/RNNT) happen before any model is loaded. The decoder comes from the
model, never from a guess: Riva's build flags and NIM family depend on it.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

from asr_flywheel.errors import InputError
from asr_flywheel.plugins.catalogue import STREAMING_REFUSAL
from asr_flywheel.plugins.contracts import BaseModel, Decoder, SftViability


def read_nemo_config(path: str | Path) -> dict:
    import yaml

    p = Path(path)
    if not p.is_file():
        raise InputError(f"NeMo model not found: {p}")
    try:
        with tarfile.open(p, "r:*") as tar:
            member = next((m for m in tar.getmembers() if m.name.endswith("model_config.yaml")), None)
            if member is None:
                raise InputError(f"{p} is not a NeMo model: no model_config.yaml inside")
            config = yaml.safe_load(tar.extractfile(member).read()) or {}
    except tarfile.TarError as exc:
        reason = str(exc).splitlines()[0].rstrip(":")
        raise InputError(f"{p} is not a readable .nemo archive ({reason}: not a tar archive)") from exc
    except (OSError, EOFError) as exc:  # truncated archives end mid-stream
        raise InputError(f"{p} is not a readable .nemo archive: {type(exc).__name__}: {exc}") from exc
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" (line {where.line + 1})" if where is not None else ""
        raise InputError(f"{p}: its model_config.yaml is not valid YAML{line}: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(config, dict):
        raise InputError(f"{p}: its model_config.yaml is not a mapping")
    return config


def decoder_of(cfg: dict) -> Decoder:
    target = str(cfg.get("target", "")) + str((cfg.get("decoder") or {}).get("_target_", ""))
    loss = str((cfg.get("loss") or {}).get("loss_name", ""))
    model_type = str((cfg.get("decoding") or {}).get("model_type", ""))
    extra = int((cfg.get("joint") or {}).get("num_extra_outputs", 0) or 0)
    if loss == "tdt" or model_type == "tdt" or extra > 0:
        return Decoder.TDT
    if "joint" in cfg or "RNNT" in target:
        return Decoder.RNNT
    return Decoder.CTC


def is_cache_aware_streaming(cfg: dict) -> bool:
    enc = cfg.get("encoder") or {}
    ctx = enc.get("att_context_size")
    multi_context = isinstance(ctx, list) and ctx and isinstance(ctx[0], list)
    return enc.get("att_context_style") == "chunked_limited" or bool(multi_context)


def describe_config(name: str, cfg: dict) -> BaseModel:
    decoder = decoder_of(cfg)
    enc = cfg.get("encoder") or {}
    family = f"{'FastConformer' if enc.get('subsampling') == 'dw_striding' else 'Conformer'}-{decoder.upper()}"
    if is_cache_aware_streaming(cfg):
        return BaseModel(
            name=name,
            family=f"cache-aware streaming {family}",
            decoder=decoder,
            backend="nemo",
            sft=SftViability.REFUSED,
            refusal_reason=STREAMING_REFUSAL,
            suggested="nvidia/parakeet-tdt-0.6b-v2",
            source=name,
        )
    return BaseModel(name=name, family=family, decoder=decoder, backend="nemo", sft=SftViability.ALLOWED, source=name)
