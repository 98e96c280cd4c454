"""Clinical ASR flywheel: the pure domain core.

Nothing here imports Prefect, torch, NeMo or transformers at module level, so scoring, gating and
`flywheel --help` stay fast. Plugin authors import the `hookimpl` marker from here::

    from asr_flywheel import hookimpl
"""

from asr_flywheel._markers import PROJECT_NAME, hookimpl

__version__ = "0.1.0"
__all__ = ["PROJECT_NAME", "__version__", "hookimpl"]
