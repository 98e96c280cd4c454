"""Remote synthesizer: NVIDIA Riva / Magpie TTS over gRPC through `riva.client` (the `riva` extra).

An explicit opt-in (`--synthesizer riva-tts`): audio text leaves the machine only when asked. The endpoint and
credentials come from the environment, never from arguments that end up in logs or manifests:

- `RIVA_TTS_URI` (default `localhost:50051`), `RIVA_TTS_SSL=1` for TLS (NVCF: `grpc.nvcf.nvidia.com:443`);
- `RIVA_TTS_FUNCTION_ID` and `NVIDIA_API_KEY` for hosted NIMs (sent as gRPC metadata only);
- `RIVA_TTS_LANGUAGE` (default `en-US`).

Overrides are sent as SSML `<phoneme alphabet="ipa">`, which Magpie reads; espeak-alphabet overrides are
converted to IPA by espeak-ng when it is installed. Words without an override go through the server's own g2p
(`ipa_source = "magpie_g2p"`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from collections.abc import Sequence
from html import escape
from pathlib import Path

from asr_flywheel.backends.tts.espeak import SynthesisError
from asr_flywheel.build.phonemes import Pronunciation


def _ipa(p: Pronunciation) -> str:
    if p.alphabet == "ipa":
        return p.phonemes.strip().strip("/[]")
    espeak = shutil.which("espeak-ng")
    if espeak is None:
        raise SynthesisError(f"{p.phrase!r}: Riva needs IPA; espeak-alphabet phonemes need espeak-ng to convert")
    res = subprocess.run([espeak, "-q", "--ipa", "--", f"[[{p.phonemes}]]"], capture_output=True, text=True)
    if res.returncode != 0 or not res.stdout.strip():
        raise SynthesisError(f"{p.phrase!r}: espeak-ng could not convert {p.phonemes!r} to IPA")
    return res.stdout.strip()


def ssml(text: str, pronunciations: Sequence[Pronunciation]) -> str:
    """`text` as SSML with each pronounced phrase wrapped in `<phoneme alphabet="ipa" ph=...>`."""
    out = escape(text, quote=False)
    for p in pronunciations:
        pattern = re.compile(rf"(?<!\w){re.escape(escape(p.phrase, quote=False))}(?!\w)", re.IGNORECASE)
        if not pattern.search(out):
            raise SynthesisError(f"pronounced phrase {p.phrase!r} does not occur in {text!r}")
        ph = escape(_ipa(p), quote=True)
        out = pattern.sub(lambda m, ph=ph: f'<phoneme alphabet="ipa" ph="{ph}">{m.group(0)}</phoneme>', out)
    return f"<speak>{out}</speak>"


class RivaSynthesizer:
    name = "riva-tts"
    engine = "riva"
    g2p_source = "magpie_g2p"

    def __init__(self, uri: str | None = None, *, use_ssl: bool | None = None, timeout_s: float = 60.0):
        self._uri = uri
        self._use_ssl = use_ssl
        self.timeout_s = timeout_s
        self._service = None
        self._lock = threading.Lock()

    @property
    def uri(self) -> str:
        return self._uri or os.environ.get("RIVA_TTS_URI", "localhost:50051")

    def _metadata(self) -> list[list[str]]:
        meta = []
        if os.environ.get("RIVA_TTS_FUNCTION_ID"):
            meta.append(["function-id", os.environ["RIVA_TTS_FUNCTION_ID"]])
        if os.environ.get("NVIDIA_API_KEY"):
            meta.append(["authorization", f"Bearer {os.environ['NVIDIA_API_KEY']}"])
        return meta

    def service(self):
        """The gRPC client, made once (riva.client imported only here: the `riva` extra)."""
        with self._lock:
            if self._service is None:
                try:
                    import riva.client
                except ImportError:
                    raise SynthesisError("riva-tts needs the riva extra: pip install 'asr-flywheel[riva]'") from None
                ssl = self._use_ssl if self._use_ssl is not None else os.environ.get("RIVA_TTS_SSL") == "1"
                auth = riva.client.Auth(uri=self.uri, use_ssl=ssl, metadata_args=self._metadata() or None)
                self._service = riva.client.SpeechSynthesisService(auth)
            return self._service

    def synthesize(
        self,
        text: str,
        out_path: Path,
        *,
        voice: str | None = None,
        phonemes: str | None = None,
        sample_rate: int = 16000,
        pronunciations: Sequence[Pronunciation] = (),
    ) -> Path:
        """Ask the server for 16-bit PCM at `sample_rate` and write it as a mono WAV (temp + rename)."""
        if phonemes:
            raise SynthesisError("riva-tts takes phonemes per phrase (pronunciations=), not a whole phoneme string")
        if not text.strip():
            raise SynthesisError("nothing to synthesise: empty text")
        request_text = ssml(text, pronunciations) if pronunciations else text
        audio = self._call(request_text, voice, sample_rate)
        return _write_pcm16(Path(out_path), audio, sample_rate)

    def _call(self, text: str, voice: str | None, sample_rate: int) -> bytes:
        import grpc
        from riva.client.proto.riva_audio_pb2 import AudioEncoding

        service = self.service()
        try:
            resp = service.synthesize(
                text,
                voice_name=voice,
                language_code=os.environ.get("RIVA_TTS_LANGUAGE", "en-US"),
                encoding=AudioEncoding.LINEAR_PCM,
                sample_rate_hz=sample_rate,
            )
        except grpc.RpcError as exc:  # message names the endpoint and the server's reason, never credentials
            raise SynthesisError(f"Riva TTS at {self.uri}: {exc.code().name}: {exc.details()}") from None
        if not resp.audio:
            raise SynthesisError(f"Riva TTS at {self.uri} returned no audio for voice {voice!r}")
        return resp.audio


def _write_pcm16(out: Path, pcm: bytes, sample_rate: int) -> Path:
    import numpy as np
    import soundfile as sf

    if len(pcm) % 2:
        raise SynthesisError("Riva TTS returned an odd number of bytes for 16-bit PCM")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp.wav")
    sf.write(str(tmp), np.frombuffer(pcm, dtype="<i2"), sample_rate, subtype="PCM_16", format="WAV")
    os.replace(tmp, out)
    return out
