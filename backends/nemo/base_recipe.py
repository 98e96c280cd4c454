"""The general-English base model: a tiny FastConformer-CTC that knows everyday English and not the clinical terms.

No model hub is reachable here, so the project makes its own base, by this recipe:
1. text: `asr_flywheel.general_english` (the flywheel's own grammar, named in the record), checked to contain no
   word of any clinical term (the recipe refuses otherwise);
2. audio: the `corpus` profile (`base_corpus`): `realistic` = five flite/Festival training voices with per-row
   rate, pitch and vocal-tract warp, two other voices for the held-out rows, pink/white noise at 20/15 dB SNR on
   40 % of the clips; `espeak` = 10 espeak-ng voices, 6 speeds, noise down to 10 dB on half the clips;
3. model: FastConformer-CTC from config, subsampling factor 4 (a near-character tokenizer needs the frames),
   sentencepiece unigram tokenizer trained on the normalised corpus plus every letter, digit and '-'; or, with
   `init_from`, an earlier base of this recipe (its weights and tokenizer) trained further on this corpus;
4. training: the project's own `NemoTrainer.train(TrainRequest)`, counted in `max_steps`, SpecAugment off;
5. held-out general-English WER on rows never trained on (the demo's control set).

Everything is seeded (init, trainer, data order, noise), so the same recipe gives the same weights on the same
machine. The model is cached under `<workspace>/models/general-base/<recipe hash>/`; a cache hit skips all of it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from asr_flywheel import general_english as ge
from asr_flywheel import io as fio
from asr_flywheel.errors import InputError
from asr_flywheel.normalize import normalize_many
from asr_flywheel.plugins.contracts import GeneralRows, MadeBase

REPO_EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MODEL_FILE = "base.nemo"
RECORD_FILE = "base_recipe.json"
TRAINING_TEXT = (
    "written form, like the clinical manifests: first letter capitalised, full stop (general_english.written); "
    "metrics normalise both sides (asr_flywheel.normalize), so case and the stop never count as errors"
)


@dataclass(frozen=True)
class BaseRecipe:
    seed: int = 1234
    n_train: int = 3000
    n_validation: int = 24
    n_heldout: int = 120
    carrier_share: float = 0.5
    vocab_size: int = 96
    d_model: int = 128
    n_layers: int = 3
    n_heads: int = 4
    subsampling_factor: int = 4
    max_steps: int = 1600
    batch_size: int = 16
    lr: float = 2.5e-3
    warmup_steps: int = 30
    #: Torch CPU threads: 1 is the fastest on a shared 2-core machine, and fixes the reduction order.
    threads: int = 1
    min_lr: float = 1e-5
    #: The audio profile of the corpus (`base_corpus.PROFILES`).
    corpus: str = "realistic"
    #: Start from this earlier base of the recipe (a folder under the repo's examples/ holding base.nemo and its
    #: record) instead of random weights: it already knows the grammar, so a new corpus only has to teach voices.
    init_from: str = ""
    #: Term lists whose words the corpus must not contain (paths relative to the repo's examples/).
    exclude_terms: tuple[str, ...] = ("clinical/terms.csv", "demo/new_terms.csv")
    text_source: str = field(default=ge.SOURCE)

    def hyperparameters(self) -> dict:
        return {
            "precision": "32",
            "lr": self.lr,
            "min_lr": self.min_lr,
            "warmup_steps": self.warmup_steps,
            "epochs": 10_000,  # the trainer counts in epochs; max_steps ends the run
            "max_steps": self.max_steps,
            "batch_size": self.batch_size,
            "spec_augment": False,  # tiny data: SpecAugment slows convergence more than it helps
            "early_stopping_patience": 0,
            "seed": self.seed,
            "num_workers": 0,
        }

    def texts(self) -> dict[str, list[str]]:
        """{split: written sentences}; splits are disjoint (one draw of distinct sentences, sliced)."""
        n = self.n_train + self.n_validation + self.n_heldout
        texts = [ge.written(s) for s in ge.sentences(n, self.seed, self.carrier_share)]
        a, b = self.n_train, self.n_train + self.n_validation
        return {"train": texts[:a], "validation": texts[a:b], "heldout": texts[b:]}

    def replay_texts(self, n: int) -> list[str]:
        """`n` further sentences of the same draw, after the held-out ones: general English the base never
        trained on and disjoint from every split (the draw is prefix-stable, so `texts()` is unchanged)."""
        total = self.n_train + self.n_validation + self.n_heldout
        return [ge.written(s) for s in ge.sentences(total + n, self.seed, self.carrier_share)[total:]]

    def corpus_key(self) -> str:
        """Names the synthesised corpus: texts, seed and voice/noise settings (not the model or training knobs)."""
        payload = {"seed": self.seed, "texts": self.texts(), "settings": _corpus_settings(self.corpus)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def recipe_hash(self) -> str:
        payload = {"recipe": dataclasses.asdict(self), "texts": self.texts(), "voices": _corpus_settings(self.corpus)}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def _corpus_settings(profile: str) -> dict:
    from asr_flywheel.backends.nemo import base_corpus as bc

    if profile == "espeak":  # the keys of the first base's record, unchanged so its hashes still match
        return {"voices": list(bc.VOICES), "speeds": list(bc.SPEEDS_WPM), "noise": [list(n) for n in bc.NOISE]}
    return {
        "profile": profile,
        "voices": list(bc.REALISTIC_VOICES),
        "control_voices": list(bc.REALISTIC_CONTROL_VOICES),
        "stretches": list(bc.STRETCHES),
        "pitches": list(bc.PITCHES),
        "warp_range": list(bc.WARP_RANGE),
        "noise": [list(n) for n in bc.REALISTIC_NOISE],
    }


def parent_base(recipe: BaseRecipe) -> Path | None:
    """The earlier base `init_from` names (its .nemo), checked to exist with its record."""
    if not recipe.init_from:
        return None
    home = REPO_EXAMPLES / recipe.init_from
    if not ((home / MODEL_FILE).is_file() and (home / RECORD_FILE).is_file()):
        raise InputError(f"init_from {recipe.init_from!r}: no {MODEL_FILE} with its {RECORD_FILE} in {home}")
    return home / MODEL_FILE


def excluded_terms(recipe: BaseRecipe) -> list[str]:
    import csv

    terms = []
    for rel in recipe.exclude_terms:
        path = REPO_EXAMPLES / rel
        if not path.is_file():
            raise InputError(f"term list named by the base recipe is missing: {path}")
        with open(path, newline="", encoding="utf-8") as fh:
            terms += [row["term"] for row in csv.DictReader(fh) if row.get("term")]
    return terms


def check_no_terms(recipe: BaseRecipe, texts: dict[str, list[str]]) -> None:
    hits = ge.term_words_in(normalize_many([s for v in texts.values() for s in v]), excluded_terms(recipe))
    if hits:
        detail = "; ".join(f"{w!r} in {len(s)} sentence(s), e.g. {s[0]!r}" for w, s in sorted(hits.items()))
        raise InputError(f"the general-English corpus contains clinical term words: {detail}")


def corpus_manifests(
    recipe: BaseRecipe, root: Path, splits=("train", "validation", "heldout"), workers: int = 2, progress=print
):
    """Synthesise (missing clips only) the named splits; returns {split: manifest path}."""
    from asr_flywheel.backends.nemo import base_corpus as bc

    texts = recipe.texts()
    check_no_terms(recipe, texts)
    return {
        s: bc.synthesise(bc.plan_clips(texts[s], s, recipe.seed, recipe.corpus), root, f"{s}.jsonl", workers, progress)
        for s in splits
    }


def control_and_replay(recipe: BaseRecipe, root: Path, replay_rows: int, workers: int = 2) -> tuple[Path, Path]:
    """(control manifest, replay manifest) for fine-tuning from this base.

    Control: the recipe's held-out rows (never trained on), with the recipe's own audio. Replay: `replay_rows`
    fresh sentences of the same grammar, voices and noise, which the base never trained on either. Replaying the
    base's own training rows was measured first and did not stop forgetting: the base has memorised them (train
    WER 0.05), so they carry almost no gradient, and control WER still rose 14-25 % on the development manifest
    whatever the learning rate; fresh rows kept it within 2 % (README, "A tour of the demo").
    """
    from asr_flywheel.backends.nemo import base_corpus as bc

    texts = {"heldout": recipe.texts()["heldout"], "replay": recipe.replay_texts(replay_rows)}
    check_no_terms(recipe, texts)
    plan = {s: bc.plan_clips(texts[s], s, recipe.seed, recipe.corpus) for s in texts}
    control = bc.synthesise(plan["heldout"], root, "control.jsonl", workers)
    replay = bc.synthesise(plan["replay"], root, "replay.jsonl", workers)
    return control, replay


def make_base_model(workspace: Path, recipe: BaseRecipe | None = None, *, workers: int = 2, log=print) -> MadeBase:
    """Run the recipe, or return the cached model when this recipe hash was already made in `workspace`."""
    from asr_flywheel.backends.nemo import base_corpus as bc

    recipe = recipe or BaseRecipe()
    digest = recipe.recipe_hash()
    home = Path(workspace) / "models" / "general-base" / digest
    if (home / MODEL_FILE).is_file() and (home / RECORD_FILE).is_file():
        return _made(home, cached=True)
    import torch

    from asr_flywheel.backends.nemo import base_pretrain as bp

    torch.set_num_threads(recipe.threads)
    t0 = time.perf_counter()
    data = Path(workspace) / "data" / "general" / recipe.corpus_key()
    log(f"synthesising the general-English corpus ({recipe.n_train} + {recipe.n_heldout} sentences) in {data}")
    manifests = corpus_manifests(recipe, data, workers=workers, progress=log)
    synth_s = time.perf_counter() - t0
    work = home.with_name(f".{digest}.work")
    work.mkdir(parents=True, exist_ok=True)
    result = bp.finished_pretraining(recipe, work)
    reused = result is not None
    if result:
        log(f"pretraining already finished in {work} (the recipe stopped after it): reusing it")
        train_s = result.run_info["timings"]["fit_s"]
    else:
        init = parent_base(recipe) or bp.build_initial_model(recipe, recipe.texts()["train"], work / "init.nemo")
        result = bp.pretrain(recipe, init, manifests, work, log)
        train_s = time.perf_counter() - t0 - synth_s
    log("scoring held-out general-English rows")
    wer = bp.heldout_wer(result.model_path, manifests["heldout"])
    record = {
        "recipe": dataclasses.asdict(recipe),
        "recipe_hash": digest,
        "text_source": recipe.text_source,
        "training_text": TRAINING_TEXT,
        "tokenizer": {
            "type": "sentencepiece unigram",
            "vocab_size": recipe.vocab_size,
            "forced_alphabet": bp.TOKENIZER_ALPHABET,
        },
        **({"init_from": _parent_record(recipe)} if recipe.init_from else {}),
        "corpus_hash": bc.corpus_hash([manifests[s] for s in ("train", "validation", "heldout")]),
        "corpus": {
            **_corpus_settings(recipe.corpus),
            "rows": {s: len(fio.read_jsonl(m)) for s, m in manifests.items()},
        },
        "excluded_terms_from": list(recipe.exclude_terms),
        "heldout_general": wer,
        "timings_s": {"synthesis": round(synth_s, 1), "training": round(train_s, 1)},
        #: True when a finished pretraining in the work directory was reused (the training time is that run's).
        "pretraining_reused": reused,
        "training_run_info": portable_run_info(result.run_info, work),
    }
    run_info = {**result.run_info, "base_recipe": {k: v for k, v in record.items() if k != "training_run_info"}}
    fio.write_json(work / "training_run_info.json", run_info)
    shutil.copyfile(result.model_path, work / MODEL_FILE)
    fio.write_json(work / RECORD_FILE, record)
    if home.exists():
        shutil.rmtree(home)
    work.rename(home)
    return _made(home, cached=False)


def _portable_path(value: str, work: Path) -> str:
    """A path as it reads on any machine: relative to the repository, or to the base's own folder."""
    path = Path(value)
    for root, prefix in ((REPO_EXAMPLES.parent, ""), (work, "<base folder>/")):
        if path.is_relative_to(root):
            return prefix + str(path.relative_to(root))
    return path.name


def portable_run_info(run_info: dict, work: Path) -> dict:
    """The trainer's run info without this machine's paths, for a record that is committed and shared: model paths
    become repository- or base-relative, and the container script (commands for this machine's work folder, gone
    once the base is published) is left out."""
    out = {k: v for k, v in run_info.items() if k != "container_command"}
    for key in ("base_model", "weights"):
        if isinstance(out.get(key), str):
            out[key] = _portable_path(out[key], work)
    return out


def _parent_record(recipe: BaseRecipe) -> dict:
    """Which earlier base this one continued from: its folder, recipe hash and the sha256 of its weights."""
    model = parent_base(recipe)
    assert model is not None
    parent = fio.read_json(model.parent / RECORD_FILE)
    return {
        "folder": f"examples/{recipe.init_from}",
        "recipe_hash": parent.get("recipe_hash"),
        "model_sha256": hashlib.sha256(model.read_bytes()).hexdigest(),
        "heldout_general": parent.get("heldout_general"),
        "note": "weights and tokenizer come from this base; vocab_size, d_model, n_layers, n_heads are its",
    }


def _made(directory: Path, *, cached: bool) -> MadeBase:
    record = fio.read_json(directory / RECORD_FILE)
    return MadeBase(
        model_path=directory / MODEL_FILE,
        record_path=directory / RECORD_FILE,
        recipe=GeneralEnglishBase.name,
        recipe_hash=record["recipe_hash"],
        heldout_wer=record["heldout_general"]["wer"],
        record=record,
        cached=cached,
    )


def recipe_of(made: MadeBase) -> BaseRecipe:
    """The settings a made base was made with, back from its record."""
    fields = {f.name for f in dataclasses.fields(BaseRecipe)}
    saved = {k: tuple(v) if isinstance(v, list) else v for k, v in made.record["recipe"].items() if k in fields}
    saved.setdefault("corpus", "espeak")  # records written before the realistic profile are espeak bases
    return BaseRecipe(**saved)


class GeneralEnglishBase:
    """The `BaseModelRecipe` plugin for this recipe (`flywheel base-model`, the demo's base)."""

    name = "nemo-general-english"

    def check_overrides(self, overrides: dict) -> None:
        from asr_flywheel.backends.nemo.base_corpus import PROFILES

        numbers = {f.name for f in dataclasses.fields(BaseRecipe) if f.type in ("int", "float")}
        known = numbers | {"corpus", "init_from"}
        bad = [f"unknown setting {k!r} (known: {', '.join(sorted(known))})" for k in overrides if k not in known]
        bad += [
            f"{k} must be a positive number, got {v!r}"
            for k, v in overrides.items()
            if k in numbers and (isinstance(v, bool) or not isinstance(v, int | float) or v <= 0)
        ]
        if "corpus" in overrides and overrides["corpus"] not in PROFILES:
            bad.append(f"corpus must be one of {', '.join(PROFILES)}, got {overrides['corpus']!r}")
        if overrides.get("init_from"):
            try:
                parent_base(dataclasses.replace(BaseRecipe(), init_from=str(overrides["init_from"])))
            except InputError as exc:
                bad.append(str(exc))
        if bad:
            raise InputError(f"base recipe {self.name!r}: " + "; ".join(bad))

    def make(self, workspace: Path, *, overrides: dict | None = None, workers: int = 2, log=print) -> MadeBase:
        self.check_overrides(overrides or {})
        return make_base_model(
            workspace, dataclasses.replace(BaseRecipe(), **(overrides or {})), workers=workers, log=log
        )

    def export(self, made: MadeBase, directory: Path) -> MadeBase:
        directory.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(made.model_path, directory / MODEL_FILE)
        shutil.copyfile(made.record_path, directory / RECORD_FILE)
        return _made(directory, cached=True)

    def exported(self, directory: Path) -> MadeBase | None:
        if (directory / MODEL_FILE).is_file() and (directory / RECORD_FILE).is_file():
            return _made(directory, cached=True)
        return None

    def general_rows(self, made: MadeBase, root: Path, *, replay_rows: int, workers: int = 2) -> GeneralRows:
        control, replay = control_and_replay(recipe_of(made), root, replay_rows, workers)
        return GeneralRows(control=control, replay=replay)
