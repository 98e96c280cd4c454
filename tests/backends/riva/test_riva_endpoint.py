"""Scoring a Riva endpoint through the offline eval step, against a small in-process gRPC server.

A real Riva server cannot run here (NGC container, GPU). The stand-in is built on riva.client's own generated
servicer (`RivaSpeechRecognitionServicer`), and the client side is the unmodified `riva.client.ASRService`.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from asr_flywheel.flows import steps
from asr_flywheel.flows.parity import check_parity

KEY = "nvapi-FAKE-key-for-tests-0123456789"


def rows(manifest: Path) -> list[dict]:
    return [json.loads(x) for x in manifest.read_text().splitlines()]


def start_riva(answers: dict[str, str], credentials=None):
    import riva.client.proto.riva_asr_pb2 as rasr
    import riva.client.proto.riva_asr_pb2_grpc as rasr_grpc

    seen: list[dict] = []

    class Riva(rasr_grpc.RivaSpeechRecognitionServicer):
        def Recognize(self, request, context):
            contexts = [(list(c.phrases), c.boost) for c in request.config.speech_contexts]
            seen.append({**dict(context.invocation_metadata()), "speech_contexts": contexts})
            text = answers.get(hashlib.sha1(request.audio).hexdigest())
            if text is None:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "unknown audio")
            alt = rasr.SpeechRecognitionAlternative(transcript=text, confidence=1.0)
            return rasr.RecognizeResponse(results=[rasr.SpeechRecognitionResult(alternatives=[alt])])

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    rasr_grpc.add_RivaSpeechRecognitionServicer_to_server(Riva(), server)
    addr = "127.0.0.1:0"
    port = server.add_secure_port(addr, credentials) if credentials else server.add_insecure_port(addr)
    server.start()
    return server, port, seen


def answers_for(manifest: Path, wrong_line: int | None = None) -> dict[str, str]:
    out = {}
    for i, r in enumerate(rows(manifest), start=1):
        audio = (manifest.parent / r["audio_filepath"]).read_bytes()
        out[hashlib.sha1(audio).hexdigest()] = "something else" if i == wrong_line else r["text"]
    return out


def test_riva_endpoint_scores_through_the_eval_step_with_auth_metadata(clinical_manifest, tmp_path, monkeypatch):
    monkeypatch.setenv("NVIDIA_API_KEY", KEY)
    server, port, seen = start_riva(answers_for(clinical_manifest))
    try:
        res = steps.evaluate(clinical_manifest, f"riva://127.0.0.1:{port}?function-id=fn-123", tmp_path / "eval")
    finally:
        server.stop(None)
    assert (
        res.report.metrics.headline.n == 8
        and res.report.metrics.headline.wer == 0.0
        and res.report.metrics.headline.ker == 0.0
    )
    assert len(seen) == 8 and all(m["function-id"] == "fn-123" for m in seen)
    assert all(m["authorization"] == f"Bearer {KEY}" for m in seen)
    written = "".join(p.read_text() for p in (tmp_path / "eval").iterdir() if p.is_file())
    assert KEY not in written and "per_sample" in str(sorted(p.name for p in (tmp_path / "eval").iterdir()))


def test_divergence_from_offline_hypotheses_names_the_row(clinical_manifest, tmp_path):
    server, port, _ = start_riva(answers_for(clinical_manifest, wrong_line=3))
    offline = tmp_path / "offline_hyps.jsonl"
    offline.write_text(
        "".join(
            json.dumps({"audio_filepath": str(clinical_manifest.parent / r["audio_filepath"]), "hyp": r["text"]}) + "\n"
            for r in rows(clinical_manifest)
        )
    )
    try:
        report = check_parity(f"riva://127.0.0.1:{port}", clinical_manifest, offline, steps_cfg(), tmp_path / "served")
    finally:
        server.stop(None)
    assert not report.ok and [m.line for m in report.mismatches] == [3]
    assert report.mismatches[0].served == "something else" and "1/8 rows differ (lines 3)" in report.summary


def steps_cfg():
    from asr_flywheel.config import FlywheelConfig

    return FlywheelConfig()


def test_tls_endpoint_with_a_root_certificate(clinical_manifest, tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
    )
    creds = grpc.ssl_server_credentials([(key.read_bytes(), cert.read_bytes())])
    server, port, _ = start_riva(answers_for(clinical_manifest), creds)
    try:
        res = steps.evaluate(clinical_manifest, f"rivas://localhost:{port}?ssl_cert={cert}", tmp_path / "eval")
    finally:
        server.stop(None)
    assert res.report.metrics.headline.wer == 0.0


def test_api_keys_in_the_url_are_refused(clinical_manifest, tmp_path):
    from asr_flywheel.errors import InputError

    with pytest.raises(InputError, match="export NVIDIA_API_KEY"):
        steps.evaluate(clinical_manifest, "riva://127.0.0.1:1?authorization=Bearer+x", tmp_path / "eval")


def test_a_boosted_eval_sends_the_words_as_riva_word_boosting(clinical_manifest, tmp_path):
    from asr_flywheel.config import FlywheelConfig

    server, port, seen = start_riva(answers_for(clinical_manifest))
    cfg = FlywheelConfig().replace("boost", alpha=20.0)
    try:
        res = steps.evaluate(
            clinical_manifest, f"riva://127.0.0.1:{port}", tmp_path / "eval", config=cfg, boost="manifest"
        )
    finally:
        server.stop(None)
    terms = list(dict.fromkeys(r["term"] for r in rows(clinical_manifest)))
    assert len(seen) == 8 and all(m["speech_contexts"] == [(terms, 20.0)] for m in seen)
    assert res.report.metrics.boost is not None and res.report.metrics.boost.count == len(terms)
