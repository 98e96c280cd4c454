"""Where each demo's base comes from: its committed folder, or the same recipe run here when the folder is missing;
and how `flywheel demo` picks the demo.

The fallback runs the real recipe (cut down to a few sentences and steps, like tests/backends/nemo/test_base_recipe.py)
on real espeak-ng audio; nothing is mocked.
"""

from __future__ import annotations

import dataclasses

import pytest

from asr_flywheel.backends.nemo.base_recipe import BaseRecipe, recipe_of
from asr_flywheel.cycle import Workspace
from asr_flywheel.flows import demo
from asr_flywheel.flows.cli import main
from asr_flywheel.plugins.manager import Plugins

TINY = {
    "n_train": 24, "n_validation": 4, "n_heldout": 6, "d_model": 32, "n_layers": 1, "n_heads": 2, "max_steps": 2,
    "batch_size": 4,
}  # fmt: skip


@pytest.mark.parametrize("profile", [demo.FULL, demo.REALISTIC], ids=["espeak", "realistic"])
def test_the_fallback_recipe_is_the_committed_base_s_own_recipe(profile):
    committed = Plugins().base_recipe(profile.base_recipe).exported(profile.base_folder)
    assert committed is not None
    assert recipe_of(committed) == dataclasses.replace(BaseRecipe(), **profile.base_settings)


def test_without_the_committed_base_the_demo_makes_an_espeak_base_in_the_workspace(tmp_path):
    profile = dataclasses.replace(
        demo.QUICK, base_folder=tmp_path / "no-committed-base", base_settings={**demo.QUICK.base_settings, **TINY}
    )
    made = demo.base_model(Workspace(tmp_path / "ws"), profile, log=lambda *_: None)
    assert made.model_path.is_relative_to(tmp_path / "ws") and recipe_of(made).corpus == "espeak"


def test_the_realistic_demo_builds_judged_flite_and_festival_rows_and_never_trains_an_unseen_voice():
    import tomllib

    realistic = demo.REALISTIC
    assert realistic.judge and all(v.split(":")[0] in ("flite", "festival") for v in realistic.voices)
    split = tomllib.loads(realistic.config.read_text())["split"]
    assert split["holdout_voices"] and set(split["holdout_voices"]) <= set(realistic.voices)


def test_quick_and_realistic_together_exit_2_before_anything_starts(tmp_path, capsys):
    assert main(["demo", "--quick", "--realistic", "--workspace", str(tmp_path / "ws")]) == 2
    assert "--quick and --realistic" in capsys.readouterr().err
    assert not (tmp_path / "ws").exists()
