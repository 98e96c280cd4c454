"""Served-model throughput: the same clips sent sequentially vs by N concurrent clients (dynamic batching on).

Starts a real tritonserver (nvidia-pytriton wheel) on loopback ports, deploys a model (default: a tiny
MedASR-architecture model built from config, on espeak-ng clips) and prints the throughput of both runs, their
ratio and p50/p95 latency. Concurrency pays off when the server's dynamic batcher groups requests into one
batched model call; the target on a 2-vCPU machine is concurrent >= 2x sequential.

    nice -n 10 .venv/bin/python bench/serve_bench.py --clients 16 --clips 16 --rounds 3
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "support"))

from helpers import free_ports


def make_clips(root: Path, n: int) -> list[bytes]:
    from asr_flywheel.backends.tts.espeak import EspeakSynthesizer
    from helpers import dataset_rows

    tts = EspeakSynthesizer()
    rows = dataset_rows(2)
    out = []
    for i in range(n):
        text, _, _, voice = rows[i % len(rows)]
        out.append(tts.synthesize(text, root / f"c{i}.wav", voice=voice).read_bytes())
    return out


def run(endpoint, clips: list[bytes], clients: int, rounds: int) -> tuple[float, list[float]]:
    """(clips per second, per-request latencies) with `clients` threads sharing the work."""
    from asr_flywheel.backends.triton.client import connect
    from asr_flywheel.backends.triton.endpoint import infer_one

    work = [c for _ in range(rounds) for c in clips]
    lock, latencies, errors = threading.Lock(), [], []

    def worker(items: list[bytes]) -> None:
        client = connect(endpoint.url, endpoint.protocol)
        try:
            for data in items:
                t = time.perf_counter()
                try:
                    infer_one(client, endpoint, data)
                except Exception as exc:
                    errors.append(str(exc))
                with lock:
                    latencies.append(time.perf_counter() - t)
        finally:
            client.close()

    threads = [threading.Thread(target=worker, args=(work[i::clients],)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} failed requests, e.g. {errors[0]}")
    return len(work) / elapsed, latencies


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[int(q) - 1] if len(values) > 1 else values[0]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", help=".nemo or HF directory (default: a tiny MedASR built from config)")
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--protocol", choices=["http", "grpc"], default="grpc")
    args = ap.parse_args()

    from asr_flywheel.backends.triton import server
    from asr_flywheel.backends.triton.deployer import TritonTarget, deploy_version
    from asr_flywheel.backends.triton.plugin import backend_of
    from asr_flywheel.flows.deploying import model_decoder

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        clips = make_clips(root, args.clips)
        model = args.model
        if model is None:
            from asr_flywheel.backends.hf.tiny import build_tiny_medasr
            from helpers import dataset_rows

            model = str(build_tiny_medasr([r[0] for r in dataset_rows(2)], root / "tiny_medasr"))
        http, grpc = free_ports(2)
        info = server.start(root / "repo", http_port=http, grpc_port=grpc)
        try:
            url = info.grpc_url if args.protocol == "grpc" else info.http_url
            target = TritonTarget(root / "repo", url, "bench", args.protocol)
            decoder, _ = model_decoder(model)
            record = deploy_version(model, target, backend=backend_of(model), decoder=decoder)
            endpoint = target.endpoint()
            run(endpoint, clips[:2], 1, 1)  # warm-up
            seq_tput, seq_lat = run(endpoint, clips, 1, args.rounds)
            con_tput, con_lat = run(endpoint, clips, args.clients, args.rounds)
        finally:
            server.stop(root / "repo")
    print(f"model: {model} (served as {record.endpoint}, {args.protocol}); {args.clips} clips x {args.rounds} rounds")
    for label, tput, lat in (("sequential", seq_tput, seq_lat), (f"{args.clients} concurrent", con_tput, con_lat)):
        p50, p95 = pct(lat, 50) * 1000, pct(lat, 95) * 1000
        print(f"{label:<14}: {tput:7.2f} clips/s   p50 {p50:7.1f} ms   p95 {p95:7.1f} ms")
    print(f"ratio concurrent/sequential: {con_tput / seq_tput:.2f}x (target >= 2x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
