"""Real noise at a measured SNR: pink noise and multi-talker babble, mixed into 16-bit speech.

The methodology only *labels* `noise_level`; here the label is a target and the manifest records the SNR
measured on the written file (speech power over the power of everything else in the file, quantisation
included). Both are whole-clip powers. If the mixture would clip, speech and noise are scaled down together,
which leaves the SNR unchanged; clipping would not.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np

NOISE_KINDS = ("pink", "babble")
CLEAN = "clean"
_LABEL = re.compile(r"^snr_(-?\d+(?:\.\d+)?)db$")
#: Peak after mixing, as a fraction of int16 full scale (headroom so rounding never clips).
PEAK = 0.95
#: A written file whose measured SNR is further than this from its label is an error, never a row.
SNR_TOLERANCE_DB = 0.5


#: SNRs a 16-bit clip can carry and measure within `SNR_TOLERANCE_DB` (16-bit PCM's dynamic range is ~96 dB).
SNR_RANGE_DB = (-20.0, 60.0)


def parse_noise_label(label: str) -> float | None:
    """Target SNR in dB for `snr_<N>db`, None for `clean`; ValueError for anything else."""
    if label == CLEAN:
        return None
    m = _LABEL.match(label)
    if not m:
        raise ValueError(f"noise level {label!r}: expected `clean` or `snr_<dB>db` (e.g. snr_15db, snr_5db)")
    snr = float(m.group(1))
    if not SNR_RANGE_DB[0] <= snr <= SNR_RANGE_DB[1]:
        raise ValueError(
            f"noise level {label!r}: SNR must be between {SNR_RANGE_DB[0]:g} and {SNR_RANGE_DB[1]:g} dB (16-bit audio "
            f"cannot carry noise {snr:g} dB below the speech, so the measured SNR could not match the label)"
        )
    return snr


def seed_of(*parts: object) -> int:
    """A 64-bit seed from the parts' text: stable across processes and runs (unlike hash())."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little")


def pink_noise(n: int, seed: int) -> np.ndarray:
    """Unit-RMS 1/f noise: white Gaussian noise shaped by 1/sqrt(f) in the frequency domain."""
    rng = np.random.default_rng(seed)
    spectrum = np.fft.rfft(rng.standard_normal(n))
    freqs = np.arange(spectrum.size, dtype=np.float64)
    freqs[0] = 1.0
    noise = np.fft.irfft(spectrum / np.sqrt(freqs), n)
    return _unit_rms(noise)


def babble_bed(talkers: list[np.ndarray], seed: int = 0) -> np.ndarray:
    """Unit-RMS babble: each talker's speech (one stream per voice) tiled to a common length and summed.

    Streams are rotated by seeded offsets so talkers do not start in unison.
    """
    if len(talkers) < 2:
        raise ValueError("babble needs at least two talkers")
    length = max(t.size for t in talkers)
    rng = np.random.default_rng(seed)
    bed = np.zeros(length)
    for t in talkers:
        stream = np.resize(_unit_rms(t.astype(np.float64)), length)
        bed += np.roll(stream, int(rng.integers(0, length)))
    return _unit_rms(bed)


def noise_for(kind: str, n: int, seed: int, babble: np.ndarray | None) -> np.ndarray:
    """`n` samples of unit-RMS noise of `kind`; babble is a seeded window of the shared bed."""
    if kind == "pink":
        return pink_noise(n, seed)
    if kind == "babble":
        if babble is None:
            raise ValueError("babble noise requested but no babble bed was made")
        start = seed % babble.size
        return _unit_rms(np.resize(np.roll(babble, -start), n))
    raise ValueError(f"unknown noise kind {kind!r} (known: {', '.join(NOISE_KINDS)})")


def mix_at_snr(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> tuple[np.ndarray, float]:
    """(int16 mixture, speech scale) with speech power / noise power = snr_db, peak-limited without clipping."""
    s = speech.astype(np.float64)
    p_speech = float(np.mean(s**2))
    if p_speech <= 0:
        raise ValueError("speech is silent: SNR is undefined")
    gain = np.sqrt(p_speech / (10 ** (snr_db / 10) * float(np.mean(noise**2))))
    mix = s + gain * noise
    peak = float(np.max(np.abs(mix)))
    scale = min(1.0, PEAK * 32767 / peak) if peak else 1.0
    return np.round(mix * scale).astype(np.int16), scale


def measured_snr(written: np.ndarray, speech: np.ndarray, scale: float) -> float:
    """SNR of a written mixture: the scaled clean speech against everything else in the file."""
    ref = speech.astype(np.float64) * scale
    residual = written.astype(np.float64) - ref
    return float(10 * np.log10(np.sum(ref**2) / np.sum(residual**2)))


def _unit_rms(x: np.ndarray) -> np.ndarray:
    rms = float(np.sqrt(np.mean(x**2)))
    return x / rms if rms > 0 else x
