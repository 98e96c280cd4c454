import json

import pytest

from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError
from asr_flywheel.flows.events import EVENT, PublishError, growth_event, publish, resource_id, watch
from asr_flywheel.manifest import append_rows
from helpers import write_manifest


def test_resource_id_is_stable_per_manifest_file(tmp_path):
    a = resource_id(tmp_path / "Clinical Manifest.jsonl")
    assert a == resource_id(str(tmp_path / "x" / ".." / "Clinical Manifest.jsonl"))
    assert a.startswith("flywheel.manifest.clinical-manifest-") and a != resource_id(tmp_path / "other.jsonl")


def test_event_carries_version_as_label_and_rows_in_payload(tmp_path):
    e = growth_event(tmp_path / "m.jsonl", "abc", 10, 4)
    assert e["event"] == EVENT and e["resource"]["flywheel.manifest.hash"] == "abc"
    assert e["resource"]["flywheel.manifest.publication"] == "abc"  # the trigger debounces per publication
    assert e["payload"] == {
        "rows": 10,
        "added_rows": 4,
        "content_hash": "abc",
        "manifest": str(tmp_path / "m.jsonl"),
        "forced": False,
    }
    assert growth_event(tmp_path / "m.jsonl", "abc", 10, 4)["id"] == e["id"]  # replays are the same event


def test_a_forced_publication_is_a_new_event_the_debounce_cannot_swallow(tmp_path):
    normal = growth_event(tmp_path / "m.jsonl", "abc", 10, 0)
    forced = [growth_event(tmp_path / "m.jsonl", "abc", 10, 0, forced=True) for _ in range(2)]
    labels = {e["resource"]["flywheel.manifest.publication"] for e in [normal, *forced]}
    assert len(labels) == 3 and all(e["payload"]["forced"] is True for e in forced)
    assert len({e["id"] for e in [normal, *forced]}) == 3
    assert all(e["resource"]["flywheel.manifest.hash"] == "abc" for e in forced)  # still the same version


def test_publishing_a_manifest_without_its_audio_says_how_to_make_it(tmp_path):
    bad = write_manifest(tmp_path / "m.jsonl", [{"audio_filepath": "audio/a.wav", "text": "give cefazolin"}])
    with pytest.raises(InputError, match=r"flywheel build TERMS\.csv --out") as err:
        publish(bad, FlywheelConfig(workspace=str(tmp_path / "ws")), url="http://127.0.0.1:9")
    assert "line 1: audio_filepath: audio file not found" in str(err.value)


def test_watching_a_missing_manifest_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match=r"not found: .*nope\.jsonl"):
        watch([str(tmp_path / "nope.jsonl")], FlywheelConfig(workspace=str(tmp_path / "ws")), once=True)


def test_an_invalid_manifest_is_never_announced(tmp_path):
    bad = write_manifest(tmp_path / "m.jsonl", [{"audio_filepath": "missing.wav", "text": "x"}])
    with pytest.raises(InputError, match="audio file not found"):
        publish(bad, FlywheelConfig(workspace=str(tmp_path / "ws")), url="http://127.0.0.1:9")
    assert not (tmp_path / "ws").exists()


def test_an_unreachable_api_fails_loudly_and_records_nothing(clinical_manifest, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"))
    with pytest.raises(PublishError, match="could not reach the Prefect API"):
        publish(clinical_manifest, cfg, url="http://127.0.0.1:9/api")
    assert not (tmp_path / "ws" / "published").exists()  # so the next attempt publishes again


def test_publish_once_per_version_and_watch_reports_growth(prefect_server, clinical_manifest, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"))
    first = publish(clinical_manifest, cfg)
    assert first.status == "published" and first.rows == 8 and first.added_rows == 8
    assert publish(clinical_manifest, cfg).status == "unchanged"
    assert publish(clinical_manifest, cfg, force=True).status == "published"
    messages = []
    watch([str(clinical_manifest)], cfg, once=True, on_publish=messages.append)
    assert messages == []  # nothing new
    row = json.loads(clinical_manifest.read_text().splitlines()[0])
    append_rows(clinical_manifest, [{**row, "audio_filepath": "audio/row1.wav", "text": "give cefazolin twice"}])
    watch([str(clinical_manifest)], cfg, once=True, on_publish=messages.append)
    assert len(messages) == 1 and "not published" in messages[0] and "duplicate row" in messages[0]
