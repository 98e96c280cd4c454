"""NeMo's phrase boosting (GPU-PB: a boosting tree fused into greedy batched decoding) from a flywheel `BoostList`.

NeMo 3.0 biases CTC, RNN-T and TDT greedy batched decoding toward key phrases through its decoding config
(`greedy.boosting_tree`, `greedy.boosting_tree_alpha`; `nemo.collections.asr.parts.context_biasing`). The tree is
built from the model's own tokenizer, so the same list works for any NeMo model. `use_triton` selects NeMo's Triton
kernels, which need CUDA and the `triton` package: off on a CPU, where NeMo's PyTorch path runs instead (measured
here; the result is the same, only slower at large lists).

Used by the offline transcriber and by the served `model.py` (Triton), so offline and served decoding are the
same config: served parity holds with a boost list on.
"""

from __future__ import annotations

import copy
import importlib.util
from typing import Any

from asr_flywheel.boost import BoostList


def triton_kernels() -> bool:
    """NeMo's Triton boosting kernels can run: a CUDA device and the `triton` package."""
    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("triton") is not None


def boosted_decoding(decoding: Any, boost: BoostList) -> Any:
    """A copy of a model's decoding config with greedy batched decoding biased toward `boost`'s phrases."""
    from omegaconf import open_dict

    cfg = copy.deepcopy(decoding)
    with open_dict(cfg):
        cfg.strategy = "greedy_batch"
        if cfg.get("greedy") is None:
            cfg.greedy = {}
        cfg.greedy.boosting_tree = {
            "key_phrases_list": list(boost.phrases),
            "context_score": boost.weights.context_score,
            "depth_scaling": boost.weights.depth_scaling,
            "use_triton": triton_kernels(),
        }
        cfg.greedy.boosting_tree_alpha = boost.weights.alpha
    return cfg


def apply_boost(model: Any, boost: BoostList) -> None:
    """Switch a loaded NeMo model to decoding with `boost` (builds the boosting tree once, here)."""
    model.change_decoding_strategy(boosted_decoding(model.cfg.decoding, boost), verbose=False)
