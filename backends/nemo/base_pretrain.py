"""Pretraining for the general-English base recipe: the seeded initial model, the run through the project's own
NeMo trainer, and the held-out WER scored with the project's metrics (`base_recipe` holds the recipe itself)."""

from __future__ import annotations

import string
import time
from pathlib import Path
from typing import TYPE_CHECKING

from asr_flywheel import io as fio
from asr_flywheel.normalize import normalize_many

if TYPE_CHECKING:
    from asr_flywheel.backends.nemo.base_recipe import BaseRecipe
    from asr_flywheel.plugins.contracts import TrainResult

#: Every character a clinical manifest's written text may contain, so no term or sentence is untokenisable.
TOKENIZER_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits + "-'."


def build_initial_model(recipe: BaseRecipe, train_texts: list[str], out: Path) -> Path:
    """Randomly initialised (seeded) FastConformer-CTC with a tokenizer over the corpus and the alphabet."""
    import torch
    from omegaconf import OmegaConf

    from asr_flywheel.backends.nemo._runtime import quiet_nemo
    from asr_flywheel.backends.nemo.tiny import fastconformer_config, train_tokenizer

    quiet_nemo()
    from nemo.collections.asr.models import EncDecCTCModelBPE

    tok = train_tokenizer([*train_texts, " ".join(TOKENIZER_ALPHABET)], out.parent / "tokenizer", recipe.vocab_size)
    cfg = fastconformer_config("ctc", tok, d_model=recipe.d_model, n_layers=recipe.n_layers, n_heads=recipe.n_heads)
    cfg["encoder"]["subsampling_factor"] = recipe.subsampling_factor
    torch.manual_seed(recipe.seed)
    model = EncDecCTCModelBPE(cfg=OmegaConf.create(cfg), trainer=None)
    model.save_to(str(out))
    return out


def heldout_wer(model_path: Path, manifest: Path) -> dict:
    """Greedy transcripts of the held-out rows, scored with the project's metrics (same normalisation)."""
    from asr_flywheel.backends.nemo.transcriber import NemoTranscriber
    from asr_flywheel.metrics import aggregate, score_rows

    rows = fio.read_jsonl(manifest)
    audio = [str(manifest.parent / r["audio_filepath"]) for r in rows]
    hyps = NemoTranscriber().load(str(model_path)).transcribe(audio)
    agg = aggregate(score_rows(normalize_many([r["text"] for r in rows]), normalize_many(hyps), [None] * len(rows)))
    return {"rows": agg.n, "wer": round(agg.wer, 4), "wer_corpus": round(agg.wer_corpus, 4), "cer": round(agg.cer, 4)}


def pretrain(recipe: BaseRecipe, init: Path, manifests: dict[str, Path], work: Path, log):
    from asr_flywheel.backends.nemo import base_corpus as bc
    from asr_flywheel.backends.nemo.trainer import NemoTrainer
    from asr_flywheel.plugins.contracts import TrainRequest

    train = bc.absolute_copy(manifests["train"], work / "train.jsonl")
    val = bc.absolute_copy(manifests["validation"], work / "validation.jsonl")
    last = [0.0]

    def progress(step: int, total: int) -> None:
        if time.perf_counter() - last[0] > 60:
            last[0] = time.perf_counter()
            log(f"  pretraining step {step}/{recipe.max_steps}")

    log(f"pretraining {recipe.max_steps} steps (batch {recipe.batch_size}) with the project's NeMo trainer")
    trainer = NemoTrainer()
    fields = {"base_model": trainer.describe(str(init))} if "base_model" in TrainRequest.__dataclass_fields__ else {}
    req = TrainRequest(
        **fields,
        base=str(init),
        train_manifest=train,
        validation_manifest=val,
        out_dir=work / "train",
        hyperparameters=recipe.hyperparameters(),
        accelerator="cpu",
        progress=progress,
    )
    return trainer.train(req)


def finished_pretraining(recipe: BaseRecipe, work: Path) -> TrainResult | None:
    """The pretraining that already finished in this work directory, if the recipe stopped after it (a crash while
    scoring, a signal). The directory is named by the recipe hash and every step is seeded, so the model there is
    this recipe's model; reusing it saves the whole pretraining. The trainer writes the model atomically, then its
    run info, so a run info next to the model means both are complete."""
    from asr_flywheel.plugins.contracts import TrainResult

    model, info_path = work / "train" / "adapted_model.nemo", work / "train" / "training_run_info.json"
    if not (model.is_file() and info_path.is_file()):
        return None
    info = fio.read_json(info_path)
    hp = info.get("hyperparameters") or {}
    if info.get("global_steps") != recipe.max_steps or hp.get("seed") != recipe.seed:
        return None
    return TrainResult(model_path=model, run_info_path=info_path, run_info=info)
