"""What the local engines share: finding their programs, running them, and resampling with sox.

Every engine writes into a temporary folder next to the output and renames the finished 16-bit mono WAV into
place, so an interrupted build never leaves a file that looks complete.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import unicodedata
from collections.abc import Callable
from pathlib import Path

from asr_flywheel.build.arpabet import word_entries
from asr_flywheel.build.phonemes import PhonemeError, Pronunciation
from asr_flywheel.errors import FlywheelError


class SynthesisError(FlywheelError):
    pass


def require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise SynthesisError(f"`{tool}` is not installed; run `make setup` (installs espeak-ng, flite, festival, sox)")
    return path


def run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, input=stdin)


def synthesise_to(out_path: Path, sample_rate: int, make_raw: Callable[[Path], None]) -> Path:
    """`make_raw(path)` writes the engine's own WAV; it is resampled to `sample_rate` mono 16-bit and renamed."""
    sox = require("sox")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        raw, final = Path(tmp) / "raw.wav", Path(tmp) / "final.wav"
        make_raw(raw)
        if not raw.exists():
            raise SynthesisError(f"the engine wrote no audio to {raw.name}")
        # -R: repeatable dither, so the same text gives byte-identical audio (deterministic builds and corpora).
        res = run([sox, "-q", "-R", str(raw), "-r", str(sample_rate), "-c", "1", "-b", "16", str(final)])
        if res.returncode != 0:
            raise SynthesisError(f"sox failed ({res.returncode}): {res.stderr.strip()[:300]}")
        os.replace(final, out)
    return out


def failed(engine: str, res: subprocess.CompletedProcess) -> SynthesisError:
    said = (res.stderr or res.stdout or "").strip()[:300]
    return SynthesisError(f"{engine} failed ({res.returncode}): {said}")


def foreign_letters(text: str) -> str:
    """Letters an English voice cannot say (outside the Latin script)."""
    return "".join(c for c in dict.fromkeys(text) if c.isalpha() and not unicodedata.name(c, "").startswith("LATIN"))


class WordLexiconEngine:
    """What flite and Festival share: pronunciations go in as word-lexicon entries (ARPAbet), one per word."""

    g2p_source = "g2p"

    def check_pronunciation(self, p: Pronunciation) -> str | None:
        try:
            word_entries(p)
        except PhonemeError as exc:
            return str(exc)
        return None
