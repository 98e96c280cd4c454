"""A transcriber plugin that breaks the contract is named on its first batch, before the rest is transcribed."""

from __future__ import annotations

import pytest

from asr_flywheel import hookimpl
from asr_flywheel.flows.cli import main
from asr_flywheel.flows.transcription import release_models, transcribe_rows
from asr_flywheel.plugins.contracts import Decoder
from asr_flywheel.plugins.manager import PluginError, get_plugin_manager
from asr_flywheel.validation import load_manifest


class Hypothesis:  # what some toolkits return instead of str
    def __init__(self, text):
        self.text = text


class CountingModel:
    name = "hyp-objects"
    decoder = Decoder.OTHER

    def __init__(self, calls):
        self.calls = calls

    def transcribe(self, audio_paths, *, batch_size=16, progress=None):
        self.calls.append(len(audio_paths))
        return [Hypothesis("x") for _ in audio_paths]


@pytest.fixture
def hypothesis_plugin():
    calls: list[int] = []

    class Transcriber:
        name = "hyp-objects"

        def claims(self, model_ref):
            return model_ref == "acme/hyp-objects"

        def load(self, model_ref):
            return CountingModel(calls)

    class Plugin:
        @hookimpl
        def register_transcribers(self):
            return [Transcriber()]

    pm = get_plugin_manager()
    plugin = pm.register(Plugin(), name="acme-hyp")
    yield calls
    pm.unregister(name=plugin)
    release_models()


def test_wrong_transcript_types_are_named_after_the_first_batch_only(hypothesis_plugin, tiny_dataset):
    manifest = load_manifest(tiny_dataset)
    with pytest.raises(PluginError) as exc:
        transcribe_rows(manifest, "acme/hyp-objects", batch_size=8)
    assert hypothesis_plugin == [8]  # 24 of 32 rows were never sent
    assert "transcriber 'hyp-objects'" in str(exc.value) and "a list of 8 (Hypothesis)" in str(exc.value)


def test_the_cli_says_which_plugin_broke_the_contract(hypothesis_plugin, tiny_dataset, tmp_path, capsys):
    assert main(["eval", str(tiny_dataset), "--model", "acme/hyp-objects", "--out", str(tmp_path / "e")]) != 0
    err = capsys.readouterr().err
    assert "transcriber 'hyp-objects'" in err and "must return a list of str" in err and "Traceback" not in err
    assert not (tmp_path / "e" / "metrics.json").exists()
