"""The PocketSphinx transcriber: the `Transcriber` and `LoadedModel` contracts over a pool of decoder processes.

PocketSphinx decodes while holding the GIL (measured: two threads take as long as one after the other), so the
clips are decoded in worker processes, one `Decoder` each, created once and reused. Its model is 16 kHz mono:
a clip at any other rate is refused by name rather than decoded into nonsense.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from asr_flywheel.backends.pocketsphinx.names import BACKEND, MODEL
from asr_flywheel.plugins import Decoder, FlywheelError, InputError

SAMPLE_RATE = 16000


class PocketSphinxTranscriber:
    name = BACKEND

    def claims(self, model_ref: str) -> bool:
        return model_ref == MODEL

    def load(self, model_ref: str) -> PocketSphinxModel:
        if model_ref != MODEL:
            raise InputError(f"{self.name} loads only {MODEL}, not {model_ref!r}")
        try:
            import pocketsphinx  # noqa: F401
        except ImportError:
            raise InputError("pocketsphinx is not installed; run `make setup`") from None
        return PocketSphinxModel()


class PocketSphinxModel:
    name = MODEL
    decoder = Decoder.OTHER

    def __init__(self, workers: int | None = None):
        self.workers = workers or os.cpu_count() or 1
        self._pool: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()

    def _executor(self) -> ProcessPoolExecutor:
        with self._lock:
            if self._pool is None:
                # spawn: the caller may be multi-threaded (the build's synthesis pool), where fork is unsafe
                from asr_flywheel.backends.pocketsphinx import _worker

                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=get_context("spawn"), initializer=_worker.start
                )
            return self._pool

    def transcribe(
        self,
        audio_paths: Sequence[str],
        *,
        batch_size: int = 16,
        progress: Callable[[int, int], None] | None = None,
    ) -> list[str]:
        from asr_flywheel.backends.pocketsphinx import _worker

        paths = [str(p) for p in audio_paths]
        hyps: list[str] = []
        try:
            for result in self._executor().map(_worker.decode, paths, chunksize=max(1, min(batch_size, 8))):
                if isinstance(result, _worker.Refusal):
                    raise InputError(result.reason)
                hyps.append(result)
                if progress is not None:
                    progress(len(hyps), len(paths))
        except BrokenProcessPool:
            self.close()
            raise FlywheelError(
                "a PocketSphinx decoder process died (killed, or out of memory); a script that builds or "
                "evaluates through the Python API needs an `if __name__ == '__main__':` guard, because the "
                "decoder processes are spawned and import the main module"
            ) from None
        return hyps

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.shutdown(cancel_futures=True)
                self._pool = None

    def __del__(self) -> None:
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
