"""A served Triton model as a transcriber plugin: `triton://HOST:PORT/NAME` is just another model reference.

`Plugins().transcriber_for("triton://...")` returns this, so `flywheel eval --endpoint` and the served-parity
check run the very same eval step (validation, scoring, files) as offline eval. Clips are sent one per request by
`batch_size` concurrent clients, so the server's dynamic batcher groups them.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from asr_flywheel.backends.triton.client import Endpoint, client_module, connect, is_endpoint, parse_endpoint
from asr_flywheel.errors import FlywheelError
from asr_flywheel.plugins.contracts import Decoder, LoadedModel, ProgressFn


class EndpointError(FlywheelError):
    """The served model answered some clips with errors (each named)."""


def infer_one(client, endpoint: Endpoint, audio: bytes) -> str:
    mod = client_module(endpoint.protocol)
    tensor = mod.InferInput("AUDIO", [1, 1], "BYTES")
    tensor.set_data_from_numpy(np.array([[audio]], dtype=np.object_))
    result = client.infer(
        endpoint.name,
        [tensor],
        model_version=endpoint.version,
        outputs=[mod.InferRequestedOutput("TRANSCRIPT")],
    )
    return result.as_numpy("TRANSCRIPT").reshape(-1)[0].decode()


class TritonEndpointModel:
    def __init__(self, ref: str, endpoint: Endpoint, decoder: Decoder):
        self.name = ref
        self.endpoint = endpoint
        self.decoder = decoder

    def transcribe(
        self, audio_paths: Sequence[str], *, batch_size: int = 16, progress: ProgressFn | None = None
    ) -> list[str]:
        workers = max(1, min(batch_size, len(audio_paths)))
        clients: queue.Queue = queue.Queue()
        for _ in range(workers):
            clients.put(connect(self.endpoint.url, self.endpoint.protocol))

        def one(path: str) -> str:
            client = clients.get()
            try:
                return infer_one(client, self.endpoint, Path(path).read_bytes())
            finally:
                clients.put(client)

        out: list[str] = [""] * len(audio_paths)
        errors: list[str] = []
        try:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {pool.submit(one, str(p)): i for i, p in enumerate(audio_paths)}
                for done, fut in enumerate(as_completed(futures), start=1):
                    i = futures[fut]
                    try:
                        out[i] = fut.result()
                    except Exception as exc:
                        errors.append(f"{audio_paths[i]}: {' '.join(str(exc).split())[:300]}")
                    if progress:
                        progress(done, len(audio_paths))
        finally:
            while not clients.empty():
                clients.get().close()
        if errors:
            raise EndpointError(f"{self.name} failed on {len(errors)} clip(s):\n  " + "\n  ".join(sorted(errors)))
        return out


class TritonEndpointTranscriber:
    name = "triton"

    def claims(self, model_ref: str) -> bool:
        return is_endpoint(model_ref)

    def load(self, model_ref: str) -> LoadedModel:
        from asr_flywheel.backends.triton.client import served_parameters

        endpoint = parse_endpoint(model_ref)
        client = connect(endpoint.url, endpoint.protocol)
        try:
            if not client.is_model_ready(endpoint.name, endpoint.version):
                what = f"{endpoint.name} version {endpoint.version}" if endpoint.version else endpoint.name
                raise FlywheelError(f"{what} is not ready on the Triton server at {endpoint.url}")
            params = served_parameters(client, endpoint.name, endpoint.protocol)
        except FlywheelError:
            raise
        except Exception as exc:
            reason = " ".join(str(exc).split())
            raise FlywheelError(f"cannot reach the Triton server at {endpoint.url}: {reason}") from None
        finally:
            client.close()
        return TritonEndpointModel(model_ref, endpoint, Decoder(params.get("decoder") or "ctc"))
