"""Local synthesizer: espeak-ng (accepts phoneme input) resampled to 16 kHz mono 16-bit by sox.

The default synthesizer because it runs offline everywhere; quality is robotic, which is fine for
exercising the pipeline and for pronunciation-tier experiments (`[[...]]` phoneme input).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from asr_flywheel.errors import FlywheelError


class SynthesisError(FlywheelError):
    pass


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SynthesisError(f"`{tool}` is not installed; run `make setup` (installs espeak-ng and sox)")
    return path


class EspeakSynthesizer:
    name = "espeak-ng"

    def __init__(self, speed_wpm: int = 160):
        self.speed_wpm = speed_wpm

    def synthesize(
        self,
        text: str,
        out_path: Path,
        *,
        voice: str | None = None,
        phonemes: str | None = None,
        sample_rate: int = 16000,
    ) -> Path:
        """Write a WAV for `text` (or for espeak phoneme mnemonics in `phonemes`). Atomic: temp + rename."""
        espeak, sox = _require("espeak-ng"), _require("sox")
        if not (phonemes or text or "").strip():
            raise SynthesisError("nothing to synthesise: empty text")
        out = Path(out_path)
        out.parent.mkdir(parents=True, exist_ok=True)
        spoken = f"[[{phonemes}]]" if phonemes else text
        with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
            raw = Path(tmp) / "raw.wav"
            final = Path(tmp) / "final.wav"
            cmd = [espeak, "-s", str(self.speed_wpm), "-w", str(raw)]
            if voice:
                cmd += ["-v", voice]
            # "--" so text starting with "-" is never read as an option.
            res = subprocess.run([*cmd, "--", spoken], capture_output=True, text=True)
            if res.returncode != 0 or not raw.exists():
                raise SynthesisError(f"espeak-ng failed ({res.returncode}): {res.stderr.strip()[:300]}")
            res = subprocess.run(
                [sox, "-q", str(raw), "-r", str(sample_rate), "-c", "1", "-b", "16", str(final)],
                capture_output=True,
                text=True,
            )
            if res.returncode != 0:
                raise SynthesisError(f"sox failed ({res.returncode}): {res.stderr.strip()[:300]}")
            os.replace(final, out)
        return out
