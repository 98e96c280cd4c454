"""Audio header inspection for pre-flight validation (no decoding of samples).

NeMo's loaders silently drop rows whose audio is missing or unreadable; reading every header up front
turns that into an explicit, line-numbered error before any GPU time is spent.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class AudioInfo:
    samplerate: int
    channels: int
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.samplerate if self.samplerate else 0.0


class AudioProblem(Exception):
    """Why an audio file cannot be used (message is user-facing)."""


def read_info(path: str) -> AudioInfo:
    """Read an audio header. Raises AudioProblem with a user-facing reason."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise AudioProblem(f"audio file not found: {path}") from None
    except OSError as exc:
        raise AudioProblem(f"audio file not accessible: {path} ({exc.strerror})") from None
    if not os.path.isfile(path):
        raise AudioProblem(f"not a regular file: {path}")
    if st.st_size == 0:
        raise AudioProblem(f"audio file is empty (0 bytes): {path}")
    import soundfile  # lazy: 80 ms import, only needed when audio is checked

    try:
        info = soundfile.info(path)
    except Exception as exc:  # libsndfile raises RuntimeError/LibsndfileError/TypeError for garbage
        raise AudioProblem(f"unreadable audio ({type(exc).__name__}: {exc}): {path}") from None
    if info.frames <= 0:
        raise AudioProblem(f"audio has no samples: {path}")
    return AudioInfo(samplerate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames))
