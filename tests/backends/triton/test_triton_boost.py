"""A Triton version is the model plus its boost list: the served model.py decodes with the version's list exactly as
the offline path does (served parity holds with boosting on), and a rollback restores the previous version's list.
A real tritonserver, the committed demo base (a real tiny NeMo CTC model) and real espeak-ng clips of terms it
never trained on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asr_flywheel.boost import boost_list, manifest_terms
from asr_flywheel.config import FlywheelConfig
from asr_flywheel.flows import steps
from asr_flywheel.flows.deploying import deploy_and_verify, rollback_model
from asr_flywheel.validation import load_manifest
from helpers import DEMO_BASE, build_new_terms

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def new_terms(tmp_path_factory) -> Path:
    return build_new_terms(tmp_path_factory.mktemp("served-boost") / "manifest.jsonl", "en-us", 2)


def hyps(path: Path) -> list[str]:
    return [json.loads(line)["hyp"] for line in path.read_text().splitlines()]


def test_served_parity_holds_with_a_boost_list_and_rollback_restores_the_list(triton, new_terms, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws")).replace("boost", alpha=3.0)
    cfg = cfg.replace("deploy", repo=triton.repo, url=triton.http_url, model_name="boosted", concurrency=4)
    boosted = steps.evaluate(new_terms, str(DEMO_BASE), tmp_path / "offline-boosted", config=cfg, boost="manifest")
    plain = steps.evaluate(new_terms, str(DEMO_BASE), tmp_path / "offline-plain", config=cfg)
    assert hyps(boosted.paths["offline_hyps"]) != hyps(plain.paths["offline_hyps"])  # the list changes transcripts
    boost = boost_list(manifest_terms(load_manifest(new_terms).column("term")), cfg.boost, "terms")

    v1 = deploy_and_verify(
        DEMO_BASE,
        new_terms,
        boosted.paths["offline_hyps"],
        cfg,
        out_dir=tmp_path / "d1",
        deployer="triton",
        boost=boost,
    )
    assert v1.ok and v1.parity.ok, v1.reason
    version = json.loads((Path(triton.repo) / "boosted" / "1" / "flywheel_version.json").read_text())
    assert version["boost"]["hash"] == boost.hash and v1.record["details"]["boost"]["hash"] == boost.hash

    v2 = deploy_and_verify(
        DEMO_BASE, new_terms, plain.paths["offline_hyps"], cfg, out_dir=tmp_path / "d2", deployer="triton"
    )
    assert v2.ok and v2.parity.ok and v2.version == "2", v2.reason

    options = {"name": "boosted", "repo": triton.repo, "url": triton.http_url, "protocol": "http"}
    assert rollback_model("triton", options).version == "1"
    served = steps.evaluate(new_terms, f"triton://{triton.http_url}/boosted", tmp_path / "served", config=cfg)
    assert hyps(served.paths["offline_hyps"]) == hyps(boosted.paths["offline_hyps"])


def test_a_deployer_that_cannot_ship_a_list_is_refused_before_anything_ships(new_terms, tmp_path):
    from asr_flywheel.errors import InputError
    from asr_flywheel.plugins.manager import Plugins

    class Plain:
        name = "plain"

        def check_target(self, config=None, **options):
            return options

    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"))
    boost = boost_list(["heparin"], cfg.boost, "terms")
    deployers = {**Plugins().deployers(), "plain": Plain()}
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(Plugins, "deployers", lambda self: deployers)
        with pytest.raises(InputError, match="the plain deployer cannot ship a boost list"):
            deploy_and_verify(DEMO_BASE, None, None, cfg, out_dir=tmp_path / "d", deployer="plain", boost=boost)
