"""riva_deploy.sh / riva_deploy.json for real tiny NeMo models (CTC, RNNT, TDT built from config).

nemo2riva, riva-build, riva-deploy and the NIM container need NVIDIA's containers and a GPU, so they cannot run
here: the tests check the generated commands (and that bash accepts the script) instead.
"""

from __future__ import annotations

import json
import shlex
import subprocess

import pytest

from asr_flywheel.backends.riva.deployer import RivaDeployer
from asr_flywheel.errors import InputError
from asr_flywheel.plugins.contracts import Decoder

EXPECTED = {
    "ctc": ("greedy", "--onnx-opset 18 --max-dim 1000"),
    "rnnt": ("nemo", "--format nemo"),
    "tdt": ("nemo", "--format nemo"),
}


@pytest.mark.parametrize("kind", ["ctc", "rnnt", "tdt"])
def test_script_and_record_follow_the_architecture_read_from_the_model(kind, nemo_tiny_models, tmp_path, monkeypatch):
    monkeypatch.setenv("NGC_API_KEY", "nvapi-FAKE-ngc-key-0123456789")
    monkeypatch.setenv("NVIDIA_API_KEY", "nvapi-FAKE-nvidia-key-0123456789")
    record = RivaDeployer().deploy(str(nemo_tiny_models[kind]), decoder=Decoder(kind), out_dir=tmp_path, name="clin")
    decoder, flags = EXPECTED[kind]
    script = (tmp_path / "riva_deploy.sh").read_text()
    plan = json.loads((tmp_path / "riva_deploy.json").read_text())
    assert plan["architecture"]["decoder"] == kind and plan["decoder_type"] == decoder
    cmds = plan["commands"]
    assert cmds["nemo2riva"].startswith("nemo2riva --out /data/clin.riva") and flags in cmds["nemo2riva"]
    assert cmds["riva_build_classic"].startswith("riva-build speech_recognition /data/clin.rmir:")
    assert f"--decoder_type={decoder}" in cmds["riva_build_classic"] and "--offline" in cmds["riva_build_classic"]
    nim = shlex.split(cmds["riva_build_nim"])
    assert nim[:3] == ["riva-build", "--config-path=pkg://servicemaker.configs.asr", "--config-name=offline"]
    assert f"decoder={decoder}" in nim
    assert cmds["riva_deploy"].startswith("riva-deploy -f /data/clin.rmir:")
    assert "NIM_TAGS_SELECTOR=name=clin,mode=ofl" in cmds["nim_run"]
    assert "NIM_DISABLE_MODEL_DOWNLOAD=true" in cmds["nim_run"] and "NIM_EXPORT_PATH=" in cmds["nim_run"]
    assert "/v1/health/ready" in cmds["health"]
    for text in cmds.values():
        assert text in script or shlex.quote(text) in script
    assert "greedy_ctc" not in script + json.dumps(plan)
    assert "FAKE" not in script + json.dumps(plan) + json.dumps(record.details)
    assert "${NGC_API_KEY:?" in script and "-e NGC_API_KEY " in script
    assert subprocess.run(["bash", "-n", str(tmp_path / "riva_deploy.sh")]).returncode == 0
    assert record.deployer == "riva" and record.endpoint is None


def test_a_caller_claiming_another_decoder_is_refused(nemo_tiny_models, tmp_path):
    with pytest.raises(InputError, match="is a tdt model"):
        RivaDeployer().deploy(str(nemo_tiny_models["tdt"]), decoder=Decoder.CTC, out_dir=tmp_path)
    assert not (tmp_path / "riva_deploy.sh").exists()


def test_hugging_face_models_are_refused_with_the_triton_route(hf_tiny_model, tmp_path):
    with pytest.raises(InputError, match="serve through --to triton"):
        RivaDeployer().deploy(str(hf_tiny_model), decoder=Decoder.CTC, out_dir=tmp_path)


def test_rollback_and_versions_say_riva_runs_on_the_target_host():
    for call in (lambda: RivaDeployer().rollback("clin", to_version=1), lambda: RivaDeployer().versions("clin")):
        with pytest.raises(InputError, match=r"not supported: Riva deploys are run by riva_deploy\.sh"):
            call()


def test_bad_ports_and_triton_only_options_are_refused_before_anything_is_written(nemo_tiny_models, tmp_path):
    with pytest.raises(InputError) as err:
        RivaDeployer().deploy(
            str(nemo_tiny_models["ctc"]), decoder=Decoder.CTC, out_dir=tmp_path, grpc_port="x", url="h:1"
        )
    assert "--grpc-port: must be a port number" in str(err.value) and "--url: not used" in str(err.value)
    assert not (tmp_path / "riva_deploy.sh").exists()


def test_the_boosted_words_are_in_the_record_and_the_script_of_a_boosted_model(nemo_tiny_models, tmp_path):
    from asr_flywheel.boost import BoostList
    from asr_flywheel.config import BoostConfig

    boost = BoostList(("cefazolin", "metoprolol tartrate"), BoostConfig(alpha=20.0), "terms.txt")
    RivaDeployer().deploy(str(nemo_tiny_models["ctc"]), decoder=Decoder.CTC, out_dir=tmp_path, name="b", boost=boost)
    plan = json.loads((tmp_path / "riva_deploy.json").read_text())
    assert plan["boost"] == {"hash": boost.hash, "words": ["cefazolin", "metoprolol tartrate"], "score": 20.0}
    script = (tmp_path / "riva_deploy.sh").read_text()
    assert f"2 word(s), score 20, list {boost.hash}" in script
    assert subprocess.run(["bash", "-n", str(tmp_path / "riva_deploy.sh")]).returncode == 0
