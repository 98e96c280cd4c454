"""deploy_and_verify outcomes that need no running server: a deployer without an endpoint (Riva writes build
files), and a Triton deploy whose server cannot be reached (reported, never raised, logged)."""

from __future__ import annotations

from pathlib import Path

import pytest

from asr_flywheel.config import FlywheelConfig
from asr_flywheel.errors import InputError
from asr_flywheel.flows.deploying import deploy_and_verify, deploy_events


def test_riva_deploy_is_ok_without_parity_and_is_logged(nemo_tiny_models, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"))
    out = deploy_and_verify(
        nemo_tiny_models["rnnt"],
        None,
        None,
        cfg,
        out_dir=tmp_path / "d",
        deployer="riva",
    )
    assert out.ok and out.parity is None and "no live endpoint" in out.reason
    assert (tmp_path / "d" / "riva_deploy.sh").is_file() and (tmp_path / "d" / "deploy_outcome.json").is_file()
    assert deploy_events(Path(cfg.workspace) / "registry")[-1]["deployer"] == "riva"


def test_unreachable_triton_server_is_a_failed_outcome_not_an_exception(hf_tiny_model, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws")).replace("deploy", url="127.0.0.1:1", repo=str(tmp_path / "r"))
    out = deploy_and_verify(hf_tiny_model, None, None, cfg, out_dir=tmp_path / "d", deployer="triton")
    assert not out.ok and out.reason.startswith("deploy failed:") and "nothing was serving before" in out.reason
    assert deploy_events(Path(cfg.workspace) / "registry")[-1]["ok"] is False


def test_bad_parity_rows_are_refused_before_anything_ships(hf_tiny_model, tiny_split, tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws")).replace("deploy", repo=str(tmp_path / "r"))
    hyps = tmp_path / "offline_hyps.jsonl"
    hyps.write_text('{"audio_filepath": "elsewhere.wav", "hyp": "x"}\n')
    with pytest.raises(InputError, match="hypotheses do not match"):
        deploy_and_verify(
            hf_tiny_model, tiny_split / "validation.jsonl", hyps, cfg, out_dir=tmp_path / "d", deployer="triton"
        )
    assert not (tmp_path / "r").exists()


def test_missing_model_and_missing_deployer_are_bad_input(tmp_path):
    cfg = FlywheelConfig(workspace=str(tmp_path / "ws"))
    with pytest.raises(InputError, match="model not found"):
        deploy_and_verify(tmp_path / "nope.nemo", None, None, cfg, out_dir=tmp_path / "d", deployer="triton")
    with pytest.raises(InputError, match="no deployer given"):
        deploy_and_verify(tmp_path / "nope.nemo", None, None, cfg, out_dir=tmp_path / "d")
    assert not (tmp_path / "ws").exists()
