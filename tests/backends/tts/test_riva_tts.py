"""The Riva / Magpie TTS synthesizer against an in-process fake server.

No Riva server can run here (it needs an NGC container and a GPU), so the server is mocked: a real gRPC server
built on riva.client's own generated servicer (`riva_tts_pb2_grpc`), answering with a tone whose length follows
the text. The client side (riva.client, the wire format, SSML, metadata, errors) is the real code.
"""

from __future__ import annotations

from concurrent import futures

import numpy as np
import pytest
import soundfile as sf

grpc = pytest.importorskip("grpc")
rtts = pytest.importorskip("riva.client.proto.riva_tts_pb2")
rtts_grpc = pytest.importorskip("riva.client.proto.riva_tts_pb2_grpc")

from asr_flywheel.backends.tts.espeak import SynthesisError  # noqa: E402
from asr_flywheel.backends.tts.riva import RivaSynthesizer  # noqa: E402
from asr_flywheel.build import BuildOptions, Pronunciation  # noqa: E402
from asr_flywheel.flows.building import build_manifest  # noqa: E402
from asr_flywheel.io import read_jsonl  # noqa: E402
from asr_flywheel.validation import validate_manifest  # noqa: E402

SECRET = "nvapi-test-secret-do-not-log"


class FakeRivaTTS(rtts_grpc.RivaSpeechSynthesisServicer):
    def __init__(self):
        self.requests: list = []
        self.metadata: list[dict] = []

    def Synthesize(self, request, context):
        self.requests.append(request)
        self.metadata.append(dict(context.invocation_metadata()))
        if request.voice_name == "no-such-voice":
            context.abort(grpc.StatusCode.NOT_FOUND, f"voice {request.voice_name} not found")
        n = int(request.sample_rate_hz * (0.3 + 0.02 * len(request.text)))
        t = np.arange(n) / request.sample_rate_hz
        pcm = (8000 * np.sin(2 * np.pi * (150 + len(request.text)) * t)).astype("<i2")
        return rtts.SynthesizeSpeechResponse(audio=pcm.tobytes())


@pytest.fixture(scope="module")
def fake_riva():
    servicer = FakeRivaTTS()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    rtts_grpc.add_RivaSpeechSynthesisServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None)


def test_synthesis_writes_the_servers_pcm_as_16k_mono_wav(fake_riva, tmp_path):
    servicer, uri = fake_riva
    out = RivaSynthesizer(uri).synthesize("Sepsis was ruled out.", tmp_path / "a.wav", voice="Magpie.EN-US.Aria")
    data, sr = sf.read(out, dtype="int16", always_2d=True)
    req = servicer.requests[-1]
    assert sr == 16000 and data.shape[1] == 1 and data.shape[0] == int(16000 * (0.3 + 0.02 * len(req.text)))
    assert (req.text, req.voice_name, req.sample_rate_hz) == ("Sepsis was ruled out.", "Magpie.EN-US.Aria", 16000)
    assert req.language_code == "en-US" and req.encoding == 1  # LINEAR_PCM


def test_overrides_travel_as_ssml_ipa_phonemes(fake_riva, tmp_path):
    servicer, uri = fake_riva
    prons = (Pronunciation("cefazolin", "ˈsɛfəzəlɪn", "ipa"),)
    RivaSynthesizer(uri).synthesize("Cefazolin was given & noted.", tmp_path / "b.wav", pronunciations=prons)
    assert servicer.requests[-1].text == (
        '<speak><phoneme alphabet="ipa" ph="ˈsɛfəzəlɪn">Cefazolin</phoneme> was given &amp; noted.</speak>'
    )
    espeak_alphabet = (Pronunciation("sepsis", "s'EpsIs", "espeak"),)
    RivaSynthesizer(uri).synthesize("No sepsis.", tmp_path / "c.wav", pronunciations=espeak_alphabet)
    assert 'ph="sˈɛpsɪs">sepsis</phoneme>' in servicer.requests[-1].text  # converted to IPA by espeak-ng


def test_api_key_goes_only_into_metadata_and_errors_name_the_server_reason(fake_riva, tmp_path, monkeypatch):
    servicer, uri = fake_riva
    monkeypatch.setenv("NVIDIA_API_KEY", SECRET)
    monkeypatch.setenv("RIVA_TTS_FUNCTION_ID", "fn-123")
    tts = RivaSynthesizer(uri)
    tts.synthesize("hello", tmp_path / "d.wav")
    assert servicer.metadata[-1]["authorization"] == f"Bearer {SECRET}"
    assert servicer.metadata[-1]["function-id"] == "fn-123"
    with pytest.raises(SynthesisError, match="NOT_FOUND: voice no-such-voice not found") as err:
        tts.synthesize("hello", tmp_path / "e.wav", voice="no-such-voice")
    assert SECRET not in str(err.value) and not (tmp_path / "e.wav").exists()


def test_build_through_the_riva_plugin_records_magpie_g2p_and_overrides(fake_riva, tmp_path, monkeypatch):
    _, uri = fake_riva
    monkeypatch.setenv("RIVA_TTS_URI", uri)
    terms = tmp_path / "terms.csv"
    terms.write_text("term,entity_category\ncefazolin,drug\nsepsis,condition\n")
    overrides = tmp_path / "o.csv"
    overrides.write_text("term,phonemes\ncefazolin,ˈsɛfəzəlɪn\n")
    out = tmp_path / "m.jsonl"
    opts = BuildOptions(
        synthesizer="riva-tts",
        voices=("Magpie.EN-US.Aria",),
        contexts=("history",),
        noise=("clean", "snr_10db"),
        noise_kinds=("pink",),
        overrides=overrides,
        progress=False,
        judge=None,  # the mock server's audio is a tone, not speech: nothing for a judge to hear
    )
    report = build_manifest(terms, out, opts)
    rows = read_jsonl(out)
    assert report.rows_added == 4 and validate_manifest(out).ok
    assert {r["term"]: r["ipa_source"] for r in rows} == {"cefazolin": "override", "sepsis": "magpie_g2p"}
    assert all(abs(r["snr_db"] - 10) <= 0.5 for r in rows if r["noise_level"] == "snr_10db")
