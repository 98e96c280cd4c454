"""Replay rows mixed into a split's train.jsonl (issue 9 §3), on real espeak-ng audio."""

import json
import shutil

import pytest

from asr_flywheel.errors import InputError
from asr_flywheel.replay import (
    REPLAY_RECORD,
    UNMIXED_FILE,
    mix_replay,
    read_replay_record,
    replay_count,
)
from helpers import write_manifest

GENERAL = [
    "the weather is nice today",
    "we walked to the market",
    "she reads a book every night",
    "the train was late again",
    "please close the window",
    "my brother plays the guitar",
]


@pytest.fixture(scope="module")
def general(tmp_path_factory, synth):
    """Six general-English rows (replay source) and a control manifest: row 0's audio, row 1's text."""
    root = tmp_path_factory.mktemp("general")
    rows = []
    for i, text in enumerate(GENERAL):
        synth(text, root / "audio" / f"g{i}.wav")
        rows.append({"audio_filepath": f"audio/g{i}.wav", "text": text, "duration": None})
    replay = write_manifest(root / "general.jsonl", rows)
    synth(GENERAL[1].capitalize() + ".", root / "control" / "c1.wav")
    control = write_manifest(
        root / "control.jsonl",
        [rows[0], {"audio_filepath": "control/c1.wav", "text": GENERAL[1].capitalize() + ".", "duration": None}],
    )
    return replay, control


@pytest.fixture
def split(tiny_split, tmp_path):
    out = tmp_path / "split"
    shutil.copytree(tiny_split, out)
    return out


def lines(path):
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_replay_fraction_is_the_share_of_the_mixed_set():
    assert replay_count(6, 0.5) == 6 and replay_count(9, 0.25) == 3 and replay_count(10, 0) == 0
    with pytest.raises(InputError, match=r"\[0, 1\)"):
        replay_count(10, 1.0)


def test_mix_adds_seeded_replay_rows_and_records_them(split, general):
    replay, _ = general
    clinical = lines(split / "train.jsonl")
    rec = mix_replay(split, replay, 0.2, seed=3)
    mixed = lines(split / "train.jsonl")
    added = [r for r in mixed if r.get("replay")]
    assert rec.rows_mixed == len(added) == rec.rows_requested == replay_count(len(clinical), 0.2)
    assert sorted(map(json.dumps, (r for r in mixed if not r.get("replay")))) == sorted(map(json.dumps, clinical))
    assert all(r["duration"] > 0 and r["audio_filepath"].startswith("/") for r in added)  # NeMo-ready rows
    assert read_replay_record(split) == rec and rec.seed == 3 and rec.fraction == 0.2
    first = (split / "train.jsonl").read_bytes()
    mix_replay(split, replay, 0.2, seed=3)
    assert (split / "train.jsonl").read_bytes() == first  # same inputs, same file; never replay on replay


def test_control_rows_are_never_drawn(split, general):
    replay, control = general
    rec = mix_replay(split, replay, 0.9, seed=0, control_manifest=control)  # asks for more than exist
    texts = {r["text"] for r in lines(split / "train.jsonl") if r.get("replay")}
    assert rec.excluded_control_rows == 2 and texts == set(GENERAL[2:])  # same audio, or same normalised text
    assert rec.rows_mixed == 4 < rec.rows_requested


def test_mixing_again_starts_from_the_clinical_rows_and_zero_unmixes(split, general):
    replay, _ = general
    clinical = (split / "train.jsonl").read_bytes()
    mix_replay(split, replay, 0.5, seed=1)
    rec = mix_replay(split, replay, 0.1, seed=1)
    assert rec.clinical_rows == len(clinical.splitlines())
    assert mix_replay(split, replay, 0.0, seed=1) is None
    assert (split / "train.jsonl").read_bytes() == clinical
    assert not (split / REPLAY_RECORD).exists() and not (split / UNMIXED_FILE).exists()


def test_a_rewritten_split_makes_the_record_stale(split, general):
    replay, _ = general
    mix_replay(split, replay, 0.2, seed=1)
    (split / "train.jsonl").write_text((split / UNMIXED_FILE).read_text())  # e.g. `flywheel split` ran again
    assert read_replay_record(split) is None


def test_bad_replay_rows_are_named_before_anything_is_written(split, general, tmp_path):
    replay, _ = general
    bad = write_manifest(
        tmp_path / "bad.jsonl",
        [*lines(replay)[:2], {"audio_filepath": "gone.wav", "text": "x"}, {"audio_filepath": "audio/g3.wav"}],
    )
    before = (split / "train.jsonl").read_bytes()
    with pytest.raises(InputError) as exc:
        mix_replay(split, bad, 0.2, seed=1)
    lines_named = {p.line for p in exc.value.problems}
    assert {3, 4} <= lines_named
    assert (split / "train.jsonl").read_bytes() == before and not (split / REPLAY_RECORD).exists()


def test_a_fraction_without_a_manifest_is_an_error(split):
    with pytest.raises(InputError, match="needs a replay_manifest"):
        mix_replay(split, None, 0.3, seed=1)
