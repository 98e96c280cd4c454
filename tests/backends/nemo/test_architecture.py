"""Architecture detection from configs: pure, no NeMo import."""

from asr_flywheel.backends.nemo.architecture import decoder_of, describe_config, is_cache_aware_streaming
from asr_flywheel.backends.nemo.tiny import tiny_config
from asr_flywheel.plugins.contracts import Decoder, SftViability


def test_decoder_type_comes_from_the_config(tmp_path):
    assert decoder_of(tiny_config("ctc", tmp_path)) is Decoder.CTC
    assert decoder_of(tiny_config("rnnt", tmp_path)) is Decoder.RNNT
    assert decoder_of(tiny_config("tdt", tmp_path)) is Decoder.TDT


def test_cache_aware_streaming_encoders_are_refused(tmp_path):
    cfg = tiny_config("rnnt", tmp_path)
    cfg["encoder"]["att_context_style"] = "chunked_limited"
    cfg["encoder"]["att_context_size"] = [[70, 13], [70, 6], [70, 1], [70, 0]]
    assert is_cache_aware_streaming(cfg)
    entry = describe_config("streaming.nemo", cfg)
    assert entry.sft is SftViability.REFUSED and "all-UNK" in entry.refusal_reason


def test_offline_fastconformer_is_allowed(tmp_path):
    entry = describe_config("m.nemo", tiny_config("tdt", tmp_path))
    assert entry.sft is SftViability.ALLOWED and entry.family == "FastConformer-TDT"
