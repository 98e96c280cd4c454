"""Triton Python-backend model: copied as `model.py` into every version of a flywheel model repository.

It imports the flywheel from the environment the stub runs in and loads the version's model through the same
transcriber plugin the offline path uses, once, in `initialize`. Each clip is written to a WAV file and
transcribed by that plugin's batched `transcribe`, so resampling, padding, decoding and output clean-up are the
offline code itself, not a copy of it: served parity then only depends on serving. Runs only inside tritonserver
(`triton_python_backend_utils` exists only there).
"""

import contextlib
import json
import locale
import shutil
import tempfile
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

# The stub embeds Python in isolated mode: no UTF-8 mode, no locale from the environment, so open() would
# default to ASCII and NeMo/torch fail reading their own UTF-8 files. Set the locale before importing them.
with contextlib.suppress(locale.Error):
    locale.setlocale(locale.LC_CTYPE, "C.UTF-8")

SAMPLE_RATE = 16000


class BadClip(Exception):
    """One clip of one request is unusable; only that request gets the error."""


class TritonPythonModel:
    def initialize(self, args):
        from asr_flywheel.plugins.manager import Plugins

        version_dir = Path(args["model_repository"]) / args["model_version"]
        meta = json.loads((version_dir / "flywheel_version.json").read_text())
        self.model_ref = str(version_dir / meta["artifact"])
        transcriber = Plugins().transcriber_for(self.model_ref, meta.get("backend") or None)
        if meta.get("boost"):  # the version's boost list, decoded exactly as the offline path decodes it
            from asr_flywheel.boost import BoostList

            self.model = transcriber.load_boosted(self.model_ref, BoostList.from_dict(meta["boost"]))
        else:
            self.model = transcriber.load(self.model_ref)
        self.batch_size = int(meta.get("batch_size", 8))
        self.tmp = Path(tempfile.mkdtemp(prefix="flywheel-triton-"))
        self.counter = 0

    def execute(self, requests):
        clips, errors = [], {}
        for r, request in enumerate(requests):
            try:
                clips += [(r, path) for path in self._clips(request)]
            except BadClip as exc:
                errors[r] = str(exc)
        texts = self._transcribe([p for _, p in clips], errors, [r for r, _ in clips])
        per_request = {r: [] for r in range(len(requests))}
        for (r, path), text in zip(clips, texts, strict=True):
            per_request[r].append(text)
            path.unlink(missing_ok=True)
        responses = []
        for r in range(len(requests)):
            if r in errors:
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(errors[r])))
                continue
            out = np.array([[t.encode()] for t in per_request[r]], dtype=np.object_)
            responses.append(pb_utils.InferenceResponse([pb_utils.Tensor("TRANSCRIPT", out)]))
        return responses

    def _clips(self, request):
        """WAV files for a request's clips: AUDIO holds whole audio files, WAVEFORM float32 16 kHz + LENGTHS."""
        import soundfile as sf

        audio = pb_utils.get_input_tensor_by_name(request, "AUDIO")
        paths = []
        if audio is not None:
            for i, item in enumerate(audio.as_numpy().reshape(-1)):
                path = self._path()
                path.write_bytes(bytes(item))
                try:
                    if sf.info(str(path)).frames <= 0:
                        raise BadClip(f"clip {i}: audio has no samples")
                except BadClip:
                    raise
                except Exception as exc:
                    raise BadClip(f"clip {i}: unreadable audio ({type(exc).__name__}: {exc})") from None
                paths.append(path)
            return paths
        wave = pb_utils.get_input_tensor_by_name(request, "WAVEFORM")
        if wave is None:
            raise BadClip("request has neither AUDIO (WAV bytes) nor WAVEFORM (float32 16 kHz)")
        data = wave.as_numpy().reshape(wave.as_numpy().shape[0], -1)
        lengths_t = pb_utils.get_input_tensor_by_name(request, "LENGTHS")
        lengths = lengths_t.as_numpy().reshape(-1) if lengths_t is not None else [data.shape[1]] * len(data)
        for i, (row, n) in enumerate(zip(data, lengths, strict=True)):
            if not 0 < int(n) <= len(row) or not np.isfinite(row[: int(n)]).all():
                raise BadClip(f"clip {i}: length {int(n)} is outside 1..{len(row)} or samples are not finite")
            path = self._path()
            sf.write(str(path), row[: int(n)].astype(np.float32), SAMPLE_RATE, subtype="FLOAT")
            paths.append(path)
        return paths

    def _path(self) -> Path:
        self.counter += 1
        return self.tmp / f"clip{self.counter}.wav"

    def _transcribe(self, paths, errors, owners):
        """One batched call; if it fails, clip by clip so a clip the model rejects fails only its own request."""
        if not paths:
            return []
        try:
            return self.model.transcribe([str(p) for p in paths], batch_size=self.batch_size)
        except Exception:
            texts = []
            for path, r in zip(paths, owners, strict=True):
                try:
                    texts += self.model.transcribe([str(path)], batch_size=1)
                except Exception as exc:
                    errors[r] = f"transcription failed: {type(exc).__name__}: {exc}"
                    texts.append("")
            return texts

    def finalize(self):
        shutil.rmtree(self.tmp, ignore_errors=True)
