"""The general-English base recipe: real flite/Festival (and espeak-ng) audio, real noise, the project's NeMo
trainer, on CPU.

The end-to-end tests run the same `make_base_model` that `flywheel base-model` runs, with a cut-down recipe (a few
dozen sentences, a 1-layer model, 3 steps) so the suite stays fast; the full recipe's numbers are in the committed
record (examples/bases/*/base_recipe.json).
"""

import dataclasses
import tarfile

import numpy as np
import pytest

from asr_flywheel import general_english as ge
from asr_flywheel.backends.nemo import base_corpus as bc
from asr_flywheel.backends.nemo.base_recipe import (
    REPO_EXAMPLES,
    BaseRecipe,
    GeneralEnglishBase,
    check_no_terms,
    excluded_terms,
    make_base_model,
)
from asr_flywheel.errors import InputError
from asr_flywheel.normalize import normalize_many

TINY_SETTINGS = {
    "n_train": 24, "n_validation": 4, "n_heldout": 6, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_steps": 3,
    "batch_size": 4,
}  # fmt: skip
TINY = BaseRecipe(**TINY_SETTINGS)
#: The committed bases: the demo's (realistic voices) and its parent (espeak-ng voices).
COMMITTED = [REPO_EXAMPLES / "bases" / "realistic", REPO_EXAMPLES / "bases" / "espeak"]


def test_the_recipe_is_a_plugin_found_by_name():
    from asr_flywheel.plugins import BaseModelRecipe
    from asr_flywheel.plugins.manager import Plugins

    recipe = Plugins().base_recipe("nemo-general-english")
    assert isinstance(recipe, BaseModelRecipe) and isinstance(recipe, GeneralEnglishBase)
    with pytest.raises(InputError, match="nemo-general-english"):
        Plugins().base_recipe("no-such-recipe")


def test_bad_overrides_are_all_named_before_any_compute():
    with pytest.raises(InputError) as err:
        GeneralEnglishBase().check_overrides({"max_steps": 0, "colour": 3, "lr": -1.0, "seed": True})
    text = str(err.value)
    assert all(s in text for s in ("max_steps", "'colour'", "lr", "seed"))
    GeneralEnglishBase().check_overrides(TINY_SETTINGS)  # all known and positive


@pytest.mark.parametrize("folder", COMMITTED, ids=lambda f: f.name)
def test_the_committed_base_reads_back_with_its_record_and_exports_unchanged(folder, tmp_path):
    recipe = GeneralEnglishBase()
    made = recipe.exported(folder)
    assert made is not None and made.recipe == recipe.name
    assert made.heldout_wer == made.record["heldout_general"]["wer"] and made.recipe_hash == made.record["recipe_hash"]
    copy = recipe.export(made, tmp_path / "out")
    assert copy.model_path.read_bytes() == made.model_path.read_bytes() and copy.record == made.record
    assert recipe.exported(tmp_path / "empty") is None


def test_default_corpus_contains_no_word_of_any_clinical_or_demo_term():
    recipe = BaseRecipe()
    texts = recipe.texts()
    check_no_terms(recipe, texts)  # raises on a hit
    words = {w for t in excluded_terms(recipe) for w in t.lower().replace("-", " ").split()}
    corpus = {w for s in normalize_many([s for v in texts.values() for s in v]) for w in s.replace("-", " ").split()}
    assert words and not words & corpus


def test_a_corpus_with_a_term_word_is_refused_naming_the_word():
    texts = {"train": ["The patient was started on cefazolin this morning."]}
    with pytest.raises(InputError, match="cefazolin"):
        check_no_terms(BaseRecipe(), texts)


def test_corpus_covers_every_word_of_the_builders_carrier_sentences():
    from asr_flywheel.build.templates import carrier_templates

    train_words = {w for s in normalize_many(BaseRecipe().texts()["train"]) for w in s.split()}
    frames = normalize_many([t.replace("{term}", "") for t in carrier_templates()])
    carrier_words = {w for t in frames for w in t.split()}
    assert carrier_words - train_words == set()


def test_splits_are_disjoint_and_deterministic_for_a_seed():
    a, b = BaseRecipe().texts(), BaseRecipe().texts()
    assert a == b
    assert not set(a["train"]) & set(a["heldout"]) and not set(a["validation"]) & set(a["heldout"])
    assert dataclasses.replace(BaseRecipe(), seed=7).texts()["train"] != a["train"]
    assert ge.SOURCE in BaseRecipe().text_source


def test_replay_sentences_are_fresh_general_english_disjoint_from_every_split_and_leave_the_recipe_unchanged():
    recipe = BaseRecipe()
    before = recipe.texts(), recipe.recipe_hash()
    replay = recipe.replay_texts(300)
    assert len(set(replay)) == 300 and not set(replay) & {s for v in before[0].values() for s in v}
    assert replay[:100] == recipe.replay_texts(100)  # more replay rows extend, never reshuffle
    assert (recipe.texts(), recipe.recipe_hash()) == before
    check_no_terms(recipe, {"replay": replay})


def test_espeak_clip_plans_use_several_voices_speeds_and_noise_levels():
    plans = bc.plan_clips(BaseRecipe().texts()["train"][:400], "train", 1234, "espeak")
    assert len({p.voice for p in plans}) >= 8 and len({p.speed_wpm for p in plans}) >= 5
    assert {p.noise_level for p in plans} == {"clean", "snr_20db", "snr_15db", "snr_10db"}
    assert {p.noise_kind for p in plans if p.snr_db} == {"pink", "white"}
    assert plans == bc.plan_clips(BaseRecipe().texts()["train"][:400], "train", 1234, "espeak")


def test_realistic_clip_plans_vary_voice_rate_pitch_warp_and_noise():
    plans = bc.plan_clips(BaseRecipe().texts()["train"][:400], "train", 1234, "realistic")
    assert {p.voice for p in plans} == set(bc.REALISTIC_VOICES) and {p.speed_wpm for p in plans} == {None}
    assert {p.stretch for p in plans} == set(bc.STRETCHES) and {p.pitch for p in plans} == set(bc.PITCHES)
    warps = [p.warp for p in plans]
    assert bc.WARP_RANGE[0] <= min(warps) < 0.95 and 1.05 < max(warps) <= bc.WARP_RANGE[1]
    assert {p.noise_level for p in plans} == {"clean", "snr_20db", "snr_15db"}
    assert plans == bc.plan_clips(BaseRecipe().texts()["train"][:400], "train", 1234, "realistic")
    with pytest.raises(ValueError, match="realistic"):
        bc.plan_clips(["A sentence."], "train", 1234, "klingon")


def test_realistic_control_rows_are_unwarped_voices_no_trained_or_replayed_row_uses():
    recipe = BaseRecipe()
    texts = recipe.texts()
    control = bc.plan_clips(texts["heldout"], "heldout", recipe.seed, "realistic")
    trained = {p.voice for s in ("train", "validation") for p in bc.plan_clips(texts[s], s, recipe.seed, "realistic")}
    replay = {p.voice for p in bc.plan_clips(recipe.replay_texts(200), "replay", recipe.seed, "realistic")}
    assert {p.voice for p in control} == set(bc.REALISTIC_CONTROL_VOICES)
    assert not {p.voice for p in control} & (trained | replay) and {p.warp for p in control} == {1.0}


def test_a_realistic_clip_is_spoken_warped_and_recorded_with_its_voice_and_prosody(tmp_path):
    import soundfile as sf

    [plan] = bc.plan_clips(["The garden was quiet this morning."], "train", 3, "realistic")
    plain = dataclasses.replace(plan, warp=1.0, snr_db=None, noise_kind=None, noise_level="clean")
    faster = dataclasses.replace(plain, warp=1.1, audio_filepath="audio/train/fast.wav")
    manifest = bc.synthesise([plain, faster], tmp_path, "m.jsonl", workers=1, progress=None)
    rows = {r["audio_filepath"]: r for r in map(__import__("json").loads, manifest.read_text().splitlines())}
    a, b = (rows[p.audio_filepath] for p in (plain, faster))
    assert a["voice_id"] == plan.voice and a["prosody"] == {"stretch": plan.stretch, "pitch": plan.pitch}
    assert b["warp"] == 1.1 and abs(b["duration"] - a["duration"] / 1.1) < 0.05  # sox speed shortens it
    assert sf.info(str(tmp_path / faster.audio_filepath)).samplerate == 16000


def test_records_of_bases_made_before_the_realistic_profile_read_back_as_espeak_bases():
    from asr_flywheel.backends.nemo.base_recipe import recipe_of

    made = GeneralEnglishBase().exported(REPO_EXAMPLES / "bases" / "espeak")
    assert made is not None and "corpus" not in made.record["recipe"]
    recipe = recipe_of(made)
    assert recipe.corpus == "espeak" and recipe.recipe_hash() != BaseRecipe().recipe_hash()
    assert bc.plan_clips(recipe.texts()["heldout"][:3], "heldout", recipe.seed, recipe.corpus)[0].speed_wpm


def test_a_bad_corpus_or_missing_parent_is_named_before_any_compute():
    with pytest.raises(InputError) as err:
        GeneralEnglishBase().check_overrides({"corpus": "klingon", "init_from": "bases/nowhere"})
    assert "klingon" in str(err.value) and "bases/nowhere" in str(err.value)
    GeneralEnglishBase().check_overrides({"corpus": "espeak", "init_from": "bases/espeak"})


@pytest.mark.parametrize("kind", ["pink", "white"])
def test_noise_is_mixed_at_the_labelled_snr(kind):
    t = np.arange(16000) / 16000
    speech = 0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))
    noise = bc.noise_samples(kind, len(speech), 5)
    mixed = bc.mix_at_snr(speech, noise, 15.0)
    residual = mixed - speech
    snr = 10 * np.log10(np.mean(speech**2) / np.mean(residual**2))
    assert abs(snr - 15.0) < 0.5


def _weights(nemo_path):
    import io

    import torch

    with tarfile.open(nemo_path) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("model_weights.ckpt"))
        return torch.load(io.BytesIO(tar.extractfile(member).read()), map_location="cpu")


@pytest.fixture(scope="module")
def tiny_base(tmp_path_factory):
    # through the plugin, as `flywheel base-model` and the demo call it
    return GeneralEnglishBase().make(tmp_path_factory.mktemp("ws-a"), overrides=TINY_SETTINGS, log=lambda *_: None)


@pytest.mark.slow
def test_recipe_records_corpus_hash_seed_steps_versions_and_heldout_wer(tiny_base):
    rec = tiny_base.record
    assert tiny_base.model_path.is_file() and not tiny_base.cached
    assert len(rec["corpus_hash"]) == 64 and rec["recipe"]["seed"] == TINY.seed
    assert rec["training_run_info"]["global_steps"] == TINY.max_steps
    assert {"nemo", "torch", "lightning"} <= set(rec["training_run_info"]["versions"])
    assert rec["text_source"] == ge.SOURCE and "capitalised" in rec["training_text"]
    assert rec["heldout_general"]["rows"] == TINY.n_heldout and rec["heldout_general"]["wer"] >= 0
    assert rec["training_run_info"]["hyperparameters"]["spec_augment"] is False
    # a record is committed and shared: none of this machine's paths (workspace, repository) in it
    text = __import__("json").dumps(rec)
    assert str(tiny_base.model_path.parents[3]) not in text and str(REPO_EXAMPLES.parent) not in text
    assert "container_command" not in rec["training_run_info"]


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_the_committed_records_hold_no_machine_paths():
    import json
    import os

    from asr_flywheel.backends.nemo.container import STOCK_CONFIG_PATH, STOCK_SCRIPT

    inside_the_container = {STOCK_SCRIPT, STOCK_CONFIG_PATH}  # NVIDIA's image's own files, the same everywhere
    records = sorted(REPO_EXAMPLES.glob("**/base_recipe.json"))
    assert records
    for record in records:
        strings = _strings(json.loads(record.read_text()))
        absolute = [s for s in strings if os.path.isabs(s) and s not in inside_the_container]
        assert not absolute, (record, absolute)


@pytest.mark.slow
def test_same_recipe_is_a_cache_hit_and_the_same_seed_gives_the_same_weights(tiny_base, tmp_path_factory):
    again = make_base_model(tiny_base.model_path.parents[3], TINY, log=lambda *_: None)
    assert again.cached and again.model_path == tiny_base.model_path
    fresh = make_base_model(tmp_path_factory.mktemp("ws-b"), TINY, log=lambda *_: None)
    assert fresh.record["corpus_hash"] == tiny_base.record["corpus_hash"]
    a, b = _weights(tiny_base.model_path), _weights(fresh.model_path)
    assert a.keys() == b.keys() and all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)


@pytest.mark.slow
def test_a_recipe_stopped_after_pretraining_reuses_the_finished_run_instead_of_training_again(
    tiny_base, tmp_path_factory
):
    import shutil

    ws = tmp_path_factory.mktemp("ws-stopped")
    work = ws / "models" / "general-base" / f".{TINY.recipe_hash()}.work"
    shutil.copytree(tiny_base.model_path.parent / "train", work / "train")  # what a crash while scoring leaves
    resumed = GeneralEnglishBase().make(ws, overrides=TINY_SETTINGS, log=lambda *_: None)
    assert resumed.record["pretraining_reused"] and not tiny_base.record["pretraining_reused"]
    assert resumed.record["heldout_general"] == tiny_base.record["heldout_general"]
    a, b = _weights(tiny_base.model_path), _weights(resumed.model_path)
    assert all(np.array_equal(a[k].numpy(), b[k].numpy()) for k in a)
    assert not work.exists()  # published under the recipe hash, like a fresh run


@pytest.mark.slow
def test_init_from_continues_the_named_base_and_records_it(tmp_path):
    import hashlib

    parent = REPO_EXAMPLES / "bases" / "espeak"
    settings = {**TINY_SETTINGS, "init_from": "bases/espeak", "max_steps": 2}
    made = GeneralEnglishBase().make(tmp_path, overrides=settings, log=lambda *_: None)
    rec = made.record["init_from"]
    assert rec["folder"] == "examples/bases/espeak"
    assert rec["model_sha256"] == hashlib.sha256((parent / "base.nemo").read_bytes()).hexdigest()
    before, after = _weights(parent / "base.nemo"), _weights(made.model_path)
    assert before.keys() == after.keys()  # the parent's architecture (d_model 128), not TINY's
    assert any(not np.array_equal(before[k].numpy(), after[k].numpy()) for k in before)
