"""Synthesise the general-English corpus of the base recipe: several voices, speaking rates and real noise.

Two corpus profiles (the recipe's `corpus` names one, and its record keeps it):
- `realistic`: flite and Festival voices a recogniser trained on human speech understands (issue 14); the
  training voices of both sexes, each row spoken at its own rate and pitch and warped in vocal-tract length
  (sox `speed`, 0.9-1.1) so a tiny model meets more speakers than the engines have. The held-out rows (the
  control set) use two voices no training row has, unwarped: general English from a new speaker;
- `espeak`: the earlier corpus, 10 espeak-ng voices at 6 speeds (the demo's first base was made from it).

Every row's voice, rate, warp, noise kind and SNR come from the recipe seed and the row index alone, so the same
recipe writes the same audio on any machine, and a subset (the control set, some replay rows) can be
synthesised without the rest. Noise is mixed into the samples (pink or white, at the labelled SNR), not only
labelled. Texts are stored in the written form of the clinical manifests (capitalised, full stop).
"""

from __future__ import annotations

import functools
import hashlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from asr_flywheel import io as fio

VOICES = (
    "en-us", "en-gb", "en-us+f3", "en-gb-scotland", "en-029",
    "en-gb-x-rp", "en-us+m3", "en-us-nyc", "en-gb+f2", "en-gb-x-gbclan",
)  # fmt: skip
SPEEDS_WPM = (140, 150, 160, 170, 180, 190)
#: (label, SNR dB or None, share of rows). Clean on half the rows; the rest mixed with pink or white noise.
NOISE = (("clean", None, 0.5), ("snr_20db", 20.0, 0.2), ("snr_15db", 15.0, 0.2), ("snr_10db", 10.0, 0.1))

#: The realistic profile. Training voices: three male and one female flite voice, Festival's male diphone voice.
REALISTIC_VOICES = ("flite:rms", "flite:awb", "flite:kal16", "flite:slt", "festival:kal")
#: Held-out (control) voices: the Festival HTS female voice and flite's 8 kHz-style diphone voice, never trained.
REALISTIC_CONTROL_VOICES = ("festival:slt_hts", "flite:kal")
#: Speaking rate (duration stretch) and pitch scale per row; vocal-tract warp (sox speed) on trained rows.
STRETCHES = (0.85, 0.92, 1.0, 1.08, 1.16)
PITCHES = (0.9, 1.0, 1.1)
WARP_RANGE = (0.9, 1.1)
#: Less noise than the espeak corpus, and none at 10 dB: the realistic voices already vary more.
REALISTIC_NOISE = (("clean", None, 0.6), ("snr_20db", 20.0, 0.25), ("snr_15db", 15.0, 0.15))
PROFILES = ("realistic", "espeak")
#: Splits spoken by the control voices (everything else is spoken by the training voices, warped).
CONTROL_SPLITS = ("heldout",)


@dataclass(frozen=True)
class ClipPlan:
    """How one row is spoken: all derived from (seed, split, index)."""

    text: str
    audio_filepath: str
    voice: str
    speed_wpm: int | None
    noise_level: str
    snr_db: float | None
    noise_kind: str | None
    noise_seed: int
    #: Realistic profile only: engine-level rate and pitch, and the sox speed warp (1.0 = none).
    stretch: float = 1.0
    pitch: float = 1.0
    warp: float = 1.0

    @property
    def voice_id(self) -> str:
        return f"{self.voice}@{self.speed_wpm}wpm" if self.speed_wpm else self.voice


def _unit(seed: int, *parts: object) -> float:
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _pick(seq, seed: int, *parts: object):
    return seq[int(_unit(seed, *parts) * len(seq))]


def _noise(table, u: float) -> tuple[str, float | None]:
    acc = 0.0
    for label, snr, share in table:
        acc += share
        if u < acc:
            return label, snr
    return table[-1][0], table[-1][1]


def _noise_fields(noise_table, seed: int, split: str, i: int) -> dict:
    """Where the row goes and how it is noised: the same draws for every profile."""
    label, snr = _noise(noise_table, _unit(seed, split, i, "noise"))
    return {
        "audio_filepath": f"audio/{split}/{split}_{i:05d}.wav",
        "noise_level": label,
        "snr_db": snr,
        "noise_kind": None if snr is None else ("pink" if _unit(seed, split, i, "kind") < 0.6 else "white"),
        "noise_seed": int(_unit(seed, split, i, "nseed") * 2**31),
    }


def plan_clips(texts: list[str], split: str, seed: int, profile: str = "espeak") -> list[ClipPlan]:
    if profile == "realistic":
        return _plan_realistic(texts, split, seed)
    if profile != "espeak":
        raise ValueError(f"unknown corpus profile {profile!r} (profiles: {', '.join(PROFILES)})")
    return [
        ClipPlan(
            text=text,
            voice=_pick(VOICES, seed, split, i, "voice"),
            speed_wpm=_pick(SPEEDS_WPM, seed, split, i, "speed"),
            **_noise_fields(NOISE, seed, split, i),
        )
        for i, text in enumerate(texts)
    ]


def _plan_realistic(texts: list[str], split: str, seed: int) -> list[ClipPlan]:
    control = split in CONTROL_SPLITS
    voices = REALISTIC_CONTROL_VOICES if control else REALISTIC_VOICES
    lo, hi = WARP_RANGE
    return [
        ClipPlan(
            text=text,
            voice=_pick(voices, seed, split, i, "voice"),
            speed_wpm=None,
            stretch=_pick(STRETCHES, seed, split, i, "stretch"),
            pitch=_pick(PITCHES, seed, split, i, "pitch"),
            warp=1.0 if control else round(lo + (hi - lo) * _unit(seed, split, i, "warp"), 3),
            **_noise_fields(REALISTIC_NOISE, seed, split, i),
        )
        for i, text in enumerate(texts)
    ]


@functools.cache
def _engines():
    """The manifest builder's router over flite and Festival (voice ids name their engine); one for all clips."""
    from asr_flywheel.backends.tts.festival import FestivalSynthesizer
    from asr_flywheel.backends.tts.flite import FliteSynthesizer
    from asr_flywheel.build.voices import Engines

    return Engines({"flite": FliteSynthesizer(), "festival": FestivalSynthesizer()}, "flite")


def _speak(plan: ClipPlan, out: Path) -> None:
    """One clip of the plan's voice: espeak-ng by speed, flite/Festival by prosody, then the sox speed warp."""
    if plan.speed_wpm is not None:
        from asr_flywheel.backends.tts.espeak import EspeakSynthesizer

        EspeakSynthesizer(speed_wpm=plan.speed_wpm).synthesize(plan.text, out, voice=plan.voice)
        return
    from asr_flywheel.backends.tts._tools import SynthesisError, require, run
    from asr_flywheel.build.voices import Prosody

    _engines().synthesize(plan.text, out, voice=plan.voice, prosody=Prosody(plan.stretch, plan.pitch))
    if plan.warp != 1.0:
        warped = out.with_name(f".warp.{out.name}")
        res = run([require("sox"), "-q", "-R", str(out), str(warped), "speed", f"{plan.warp:g}", "rate", "16000"])
        if res.returncode != 0:
            raise SynthesisError(f"sox speed {plan.warp:g} failed on {out}: {res.stderr.strip()[:200]}")
        warped.replace(out)


def noise_samples(kind: str, n: int, seed: int):
    """Unit-power white or pink (1/f power) noise, deterministic for the seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    white = rng.standard_normal(n)
    if kind == "pink":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=float)
        f[0] = 1.0
        white = np.fft.irfft(spec / np.sqrt(f), n)
    return white / np.sqrt(np.mean(white**2) + 1e-12)


def mix_at_snr(signal, noise, snr_db: float):
    """Scale `noise` so that 10·log10(P_signal / P_noise) equals `snr_db`, add it, keep int16 headroom."""
    import numpy as np

    p_sig = float(np.mean(signal**2)) + 1e-12
    mixed = signal + noise * np.sqrt(p_sig / 10 ** (snr_db / 10))
    peak = float(np.max(np.abs(mixed)))
    return mixed * (0.98 / peak) if peak > 0.98 else mixed


def _synthesise(args: tuple[ClipPlan, str]) -> float:
    import soundfile as sf

    plan, root = args
    out = Path(root) / plan.audio_filepath
    if not out.exists():
        tmp = out.with_name(f".{out.name}.tmp.wav")
        _speak(plan, tmp)
        if plan.snr_db is not None:
            audio, sr = sf.read(tmp, dtype="float64")
            noise = noise_samples(plan.noise_kind, len(audio), plan.noise_seed)
            sf.write(tmp, mix_at_snr(audio, noise, plan.snr_db), sr, subtype="PCM_16")
        tmp.replace(out)
    return sf.info(str(out)).duration


def synthesise(plans: list[ClipPlan], root: Path, manifest_name: str, workers: int = 2, progress=print) -> Path:
    """Write missing clips (in parallel) and the manifest `root/manifest_name` (relative audio paths)."""
    root.mkdir(parents=True, exist_ok=True)
    durations: list[float] = []
    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        for i, d in enumerate(pool.map(_synthesise, [(p, str(root)) for p in plans], chunksize=16), 1):
            durations.append(d)
            if progress and (i % 500 == 0 or i == len(plans)):
                progress(f"  {manifest_name}: {i}/{len(plans)} clips")
    rows = [
        {
            "audio_filepath": p.audio_filepath,
            "text": p.text,
            "duration": round(d, 3),
            "voice_id": p.voice_id,
            "noise_level": p.noise_level,
            "noise_kind": p.noise_kind,
            "context_type": "general",
            **({} if p.speed_wpm else {"prosody": {"stretch": p.stretch, "pitch": p.pitch}, "warp": p.warp}),
        }
        for p, d in zip(plans, durations, strict=True)
    ]
    return fio.write_jsonl(root / manifest_name, rows)


def absolute_copy(manifest: Path, out: Path) -> Path:
    """NeMo-ready copy of a manifest: absolute audio paths (NeMo resolves relative ones inconsistently)."""
    rows = fio.read_jsonl(manifest)
    for r in rows:
        r["audio_filepath"] = str((manifest.parent / r["audio_filepath"]).resolve())
    return fio.write_jsonl(out, rows)


def corpus_hash(manifests: list[Path]) -> str:
    """sha256 over the manifests' rows and the bytes of every clip they name."""
    h = hashlib.sha256()
    for m in manifests:
        for r in fio.read_jsonl(m):
            h.update(fio.dumps_json(r, indent=False))
            h.update(hashlib.sha256((m.parent / r["audio_filepath"]).read_bytes()).digest())
    return h.hexdigest()
