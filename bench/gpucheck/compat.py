"""Import-time compatibility of NeMo 3.0.0 with newer Lightning: applied before NeMo is imported."""

from __future__ import annotations

import sys


class LenientSignatureCheck:
    """`overrides.ensure_signature_is_compatible` that records a mismatch instead of raising it."""

    def __init__(self, original, applied: list[str]):
        self.original, self.applied = original, applied

    def __call__(self, super_callable, sub_callable, is_static=False, *a, **k):
        try:
            return self.original(super_callable, sub_callable, is_static, *a, **k)
        except TypeError as e:
            self.applied.append(f"overrides signature check relaxed: {str(e)[:140]}")


def _no_neptune(self, *a, **k):
    """The placeholder NeptuneLogger's constructor: never used by the checks."""
    raise ImportError("NeptuneLogger is not available in this lightning version")


def compat_shims() -> list[str]:
    """Make NeMo 3.0.0 importable with lightning >= 2.6 (it declares lightning<=2.4.0). Must run before NeMo
    is imported. Each shim applies only when needed, so with lightning 2.4/2.5 this does nothing."""
    applied = []
    # 1) nv_one_logger's OneLoggerPTLTrainer.save_checkpoint(weights_only: bool) vs lightning 2.6's
    #    Optional[bool]: the `overrides` package raises TypeError at class creation. Relax that check only.
    try:
        import overrides  # noqa: F401

        ov = sys.modules.get("overrides.overrides")
        if ov is not None and hasattr(ov, "ensure_signature_is_compatible"):
            ov.ensure_signature_is_compatible = LenientSignatureCheck(ov.ensure_signature_is_compatible, applied)
    except ImportError:
        pass
    # 2) lightning 2.6.x (x >= 2) removed NeptuneLogger; nemo.utils.exp_manager imports it by name.
    try:
        import lightning.pytorch.loggers as pl_loggers

        if not hasattr(pl_loggers, "NeptuneLogger"):
            pl_loggers.NeptuneLogger = type("NeptuneLogger", (pl_loggers.Logger,), {"__init__": _no_neptune})
            applied.append("lightning.pytorch.loggers.NeptuneLogger placeholder added")
    except ImportError as e:
        applied.append(f"lightning import failed: {e}")
    return applied
