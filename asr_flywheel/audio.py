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
    result = AudioInfo(samplerate=int(info.samplerate), channels=int(info.channels), frames=int(info.frames))
    declared = _wav_declared_data_bytes(path)
    if declared is not None and declared[1] > st.st_size:
        # libsndfile quietly reports only the frames present; the header's own length says the file was cut short
        frame_bytes = max(1, declared[2]) * result.channels
        said = declared[0] / frame_bytes / result.samplerate if result.samplerate else 0.0
        raise AudioProblem(
            f"truncated WAV: its header says {said:.2f} s of audio, the file holds {result.duration:.2f} s: {path}"
        )
    return result


def _wav_declared_data_bytes(path: str) -> tuple[int, int, int] | None:
    """For a RIFF/WAVE file: (the `data` chunk's declared size, where that chunk should end, bytes per sample);
    None for other formats or headers this does not understand (libsndfile has already checked them)."""
    import struct

    with open(path, "rb") as fh:
        head = fh.read(65536)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, sample_bytes = 12, 2
    while pos + 8 <= len(head):
        chunk, size = head[pos : pos + 4], struct.unpack("<I", head[pos + 4 : pos + 8])[0]
        if chunk == b"fmt " and pos + 24 <= len(head):
            sample_bytes = struct.unpack("<H", head[pos + 22 : pos + 24])[0] // 8
        if chunk == b"data":
            if size in (0, 0xFFFFFFFF):  # streaming writers leave the size open: nothing to compare
                return None
            return size, pos + 8 + size, sample_bytes
        pos += 8 + size + (size & 1)
    return None
