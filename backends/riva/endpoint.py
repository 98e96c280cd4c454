"""A running Riva endpoint as a transcriber plugin: `riva://HOST:PORT` (plain) or `rivas://HOST:PORT` (TLS).

Scored with riva.client's offline recognize, so `flywheel eval --endpoint riva://...` goes through the same eval
step as offline eval. Query parameters add gRPC metadata (e.g. `?function-id=...` for NVIDIA-hosted endpoints) and
`ssl_cert=PATH` a root certificate; the API key is read from `$NVIDIA_API_KEY` at call time and sent as a bearer
token, never written into a URL, a record or a log.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from asr_flywheel.boost import BoostList
from asr_flywheel.errors import FlywheelError, InputError
from asr_flywheel.plugins.contracts import Decoder, LoadedModel, ProgressFn
from asr_flywheel.secrets import get_secret

SCHEMES = ("riva", "rivas")


@dataclass(frozen=True)
class RivaEndpoint:
    uri: str
    use_ssl: bool
    ssl_cert: str | None = None
    metadata: tuple[tuple[str, str], ...] = field(default_factory=tuple)
    language_code: str = "en-US"


def parse(ref: str) -> RivaEndpoint:
    parts = urlsplit(ref)
    if parts.scheme not in SCHEMES or not parts.netloc:
        raise InputError(f"not a Riva endpoint: {ref!r} (use riva://HOST:PORT or rivas://HOST:PORT for TLS)")
    query = parse_qsl(parts.query)
    cert = next((v for k, v in query if k == "ssl_cert"), None)
    lang = next((v for k, v in query if k == "language_code"), "en-US")
    if any(k.lower() in ("authorization", "api_key") for k, _ in query):
        raise InputError("do not put API keys in endpoint URLs: export NVIDIA_API_KEY instead")
    meta = tuple((k, v) for k, v in query if k not in ("ssl_cert", "language_code"))
    return RivaEndpoint(parts.netloc, parts.scheme == "rivas" or cert is not None, cert, meta, lang)


def metadata_args(endpoint: RivaEndpoint) -> list[list[str]]:
    meta = [[k, v] for k, v in endpoint.metadata]
    key = get_secret("NVIDIA_API_KEY")
    if key:
        meta.append(["authorization", f"Bearer {key}"])
    return meta


class RivaEndpointModel:
    decoder = Decoder.CTC  # Riva does not report the acoustic model's decoder; unused by scoring

    def __init__(self, ref: str, endpoint: RivaEndpoint, boost: BoostList | None = None):
        import riva.client

        self.name = ref
        self.endpoint = endpoint
        self.boost = boost
        auth = riva.client.Auth(
            ssl_root_cert=endpoint.ssl_cert,
            use_ssl=endpoint.use_ssl,
            uri=endpoint.uri,
            metadata_args=metadata_args(endpoint) or None,
        )
        self.service = riva.client.ASRService(auth)

    def transcribe(
        self, audio_paths: Sequence[str], *, batch_size: int = 16, progress: ProgressFn | None = None
    ) -> list[str]:
        import riva.client

        out, errors = [], []
        for done, path in enumerate(audio_paths, start=1):
            config = riva.client.RecognitionConfig(
                language_code=self.endpoint.language_code, max_alternatives=1, enable_automatic_punctuation=False
            )
            riva.client.add_audio_file_specs_to_config(config, str(path))
            if self.boost is not None:  # Riva's request-time word boosting (SpeechContext phrases and boost)
                riva.client.add_word_boosting_to_config(config, list(self.boost.phrases), self.boost.weights.alpha)
            try:
                response = self.service.offline_recognize(Path(path).read_bytes(), config)
                out.append(" ".join(r.alternatives[0].transcript.strip() for r in response.results if r.alternatives))
            except Exception as exc:  # grpc.RpcError carries the server's status and details
                details = exc.details() if callable(getattr(exc, "details", None)) else str(exc)
                errors.append(f"{path}: {details}")
                out.append("")
            if progress:
                progress(done, len(audio_paths))
        if errors:
            raise FlywheelError(f"Riva endpoint failed on {len(errors)} clip(s):\n  " + "\n  ".join(errors[:20]))
        return out


class RivaEndpointTranscriber:
    name = "riva"

    def claims(self, model_ref: str) -> bool:
        return any(model_ref.startswith(f"{s}://") for s in SCHEMES)

    def load(self, model_ref: str) -> LoadedModel:
        return RivaEndpointModel(model_ref, parse(model_ref))

    def load_boosted(self, model_ref: str, boost: BoostList) -> LoadedModel:
        """Scoring through Riva with its word boosting: every request carries the list's words and score."""
        return RivaEndpointModel(model_ref, parse(model_ref), boost)
