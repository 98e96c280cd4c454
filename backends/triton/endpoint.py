"""A served Triton model as a transcriber plugin: `triton://HOST:PORT/NAME` is just another model reference.

`Plugins().transcriber_for("triton://...")` returns this, so `flywheel eval --endpoint` and the served-parity
check run the very same eval step (validation, scoring, files) as offline eval. Clips are sent one per request by
`batch_size` concurrent clients, so the server's dynamic batcher groups them.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Sequence
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
        """Up to `batch_size` worker threads, each with its own client made, used and closed on that thread:
        geventhttpclient clients belong to the thread that made them, and pooled clients handed between threads
        once failed served parity ("Cannot switch to a different thread"). Progress is reported on the caller's
        thread (where the Prefect run context lives)."""
        paths = [str(p) for p in audio_paths]
        todo: queue.SimpleQueue[int] = queue.SimpleQueue()
        for i in range(len(paths)):
            todo.put(i)
        results: queue.SimpleQueue[tuple[int, str, str]] = queue.SimpleQueue()
        workers = [
            threading.Thread(target=self._work, args=(paths, todo, results), daemon=True)
            for _ in range(max(1, min(batch_size, len(paths))))
        ]
        for w in workers:
            w.start()
        out: list[str] = [""] * len(paths)
        errors: list[str] = []
        for done in range(1, len(paths) + 1):
            i, text, error = _next_result(results, workers)
            out[i] = text
            if error:
                errors.append(f"{paths[i]}: {error}")
            if progress:
                progress(done, len(paths))
        for w in workers:
            w.join()
        if errors:
            raise EndpointError(f"{self.name} failed on {len(errors)} clip(s):\n  " + "\n  ".join(sorted(errors)))
        return out

    def _work(self, paths: list[str], todo: queue.SimpleQueue, results: queue.SimpleQueue) -> None:
        """Answer clips until none are left; every clip taken gets exactly one result (text or error)."""
        client, failure = None, ""
        try:
            client = connect(self.endpoint.url, self.endpoint.protocol)
        except Exception as exc:
            failure = f"cannot connect: {_one_line(exc)}"
        try:
            while True:
                try:
                    i = todo.get_nowait()
                except queue.Empty:
                    return
                if client is None:
                    results.put((i, "", failure))
                    continue
                try:
                    results.put((i, infer_one(client, self.endpoint, Path(paths[i]).read_bytes()), ""))
                except Exception as exc:
                    results.put((i, "", _one_line(exc)))
        finally:
            if client is not None:
                client.close()


def _next_result(results: queue.SimpleQueue, workers: list[threading.Thread]) -> tuple[int, str, str]:
    while True:
        try:
            return results.get(timeout=1.0)
        except queue.Empty:
            if not any(w.is_alive() for w in workers):
                raise EndpointError("the endpoint's worker threads stopped before every clip was answered") from None


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300]


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
