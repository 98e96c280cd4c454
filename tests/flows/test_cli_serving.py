"""The serving tour through the CLI: serve start → deploy → eval --endpoint → rollback → serve stop, with a real
tritonserver on loopback ports and a tiny MedASR-architecture model; plus the bad-input exits."""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

import pytest

from asr_flywheel.flows.cli import main
from asr_flywheel.plugins.manager import Plugins
from helpers import free_ports


@pytest.fixture
def served(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the default workspace (deploy log, records) lands here
    repo = tmp_path / "repo"
    http, grpc = free_ports(2)
    args = ["--repo", str(repo), "--http-port", str(http), "--grpc-port", str(grpc)]
    assert main(["serve", "start", *args]) == 0
    yield repo, f"127.0.0.1:{http}", f"127.0.0.1:{grpc}"
    main(["serve", "stop", "--repo", str(repo)])


@pytest.mark.slow
def test_serving_tour_deploy_eval_rollback(served, hf_tiny_model, clinical_manifest, tmp_path, capsys):
    repo, http, grpc = served
    assert main(["serve", "status", "--repo", str(repo)]) == 0
    assert f"HTTP {http}" in capsys.readouterr().out
    target = ["--repo", str(repo), "--url", http, "--name", "clin"]
    assert main(["deploy", str(hf_tiny_model), "--to", "triton", *target, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["ok"] and first["version"] == "1" and first["endpoint"] == f"triton://{http}/clin/1"
    assert main(["deploy", str(hf_tiny_model), "--to", "triton", *target]) == 0
    assert "deployed: version 2 serves" in capsys.readouterr().out
    broken = shutil.copytree(hf_tiny_model, tmp_path / "broken")
    (broken / "model.safetensors").write_bytes(b"truncated")
    assert main(["deploy", str(broken), "--to", "triton", *target]) == 1
    assert "version 3 failed" in (err := capsys.readouterr().err) and "version 2 keeps serving" in err

    offline = tmp_path / "offline"
    assert main(["eval", str(clinical_manifest), "--model", str(hf_tiny_model), "--out", str(offline)]) == 0
    capsys.readouterr()
    for endpoint in (f"triton://{http}/clin", f"tritongrpc://{grpc}/clin"):
        out = tmp_path / endpoint.split(":")[0]
        argv = ["eval", str(clinical_manifest), "--endpoint", endpoint, "--out", str(out)]
        assert main([*argv, "--offline-hyps", str(offline / "offline_hyps.jsonl")]) == 0
        assert "served vs offline: all 8 rows identical" in capsys.readouterr().out
        assert (out / "per_sample.jsonl").is_file() and (out / "parity.md").is_file()

    assert main(["rollback", "clin", "--repo", str(repo), "--url", http]) == 0
    assert "clin now serves version 1" in capsys.readouterr().out
    served = Plugins().deployer("triton").versions("clin", repo=str(repo), url=http)
    assert (served.served, served.endpoint) == ("1", f"triton://{http}/clin/1") and {"1", "2"} <= set(served.versions)
    log = [json.loads(x) for x in (tmp_path / "workspace" / "registry" / "deploys.jsonl").read_text().splitlines()]
    assert [(e["action"], e["version"], e["ok"]) for e in log] == [
        ("deploy", "1", True),
        ("deploy", "2", True),
        ("deploy", None, False),
        ("rollback", "1", True),
    ]

    assert main(["rollback", "clin", "--repo", str(repo), "--url", http, "--to-version", "9"]) == 2
    assert "has no version 9" in capsys.readouterr().err

    # tritonserver killed with SIGKILL: `serve start` serves again what was served (version 1), no rollback needed
    import signal
    import urllib.request

    pid = json.loads((repo / ".serve" / "server.json").read_text())["pid"]
    os.kill(pid, signal.SIGKILL)
    ports = ["--http-port", http.rsplit(":", 1)[1], "--grpc-port", grpc.rsplit(":", 1)[1]]
    deadline = __import__("time").monotonic() + 20
    while main(["serve", "status", "--repo", str(repo)]) == 0 and __import__("time").monotonic() < deadline:
        __import__("time").sleep(0.2)
    assert main(["serve", "start", "--repo", str(repo), *ports]) == 0
    with urllib.request.urlopen(f"http://{http}/v2/models/clin/versions/1/ready", timeout=10) as ready:
        assert ready.status == 200
    out = tmp_path / "after-restart"
    argv = ["eval", str(clinical_manifest), "--endpoint", f"triton://{http}/clin", "--out", str(out)]
    assert main([*argv, "--offline-hyps", str(offline / "offline_hyps.jsonl")]) == 0

    # the running server is not silently returned for other ports
    capsys.readouterr()
    other = str(free_ports(1)[0])
    assert main(["serve", "start", "--repo", str(repo), "--http-port", other]) == 2
    assert f"already serves {repo}" in (err := capsys.readouterr().err) and f"--http-port {other}" in err

    # a rollback against a server that is gone names the URL and is logged as failed
    assert main(["serve", "stop", "--repo", str(repo)]) == 0
    assert main(["rollback", "clin", "--repo", str(repo), "--url", http]) == 1
    assert f"no Triton server answering at {http}" in capsys.readouterr().err
    last = json.loads((tmp_path / "workspace" / "registry" / "deploys.jsonl").read_text().splitlines()[-1])
    assert (last["action"], last["ok"]) == ("rollback", False) and http in last["reason"]


def test_deploy_to_riva_prints_and_writes_the_script(nemo_tiny_models, tmp_path, capsys):
    assert main(["deploy", str(nemo_tiny_models["tdt"]), "--to", "riva", "--out", str(tmp_path / "riva")]) == 0
    out = capsys.readouterr().out
    assert "--decoder_type=nemo" in out and (tmp_path / "riva" / "riva_deploy.sh").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["deploy", "missing.nemo", "--to", "triton", "--url", "127.0.0.1:1"], "model not found"),
        (["deploy", "{model}", "--to", "triton", "--url", "nonsense"], "--url must be HOST:PORT"),
        (["deploy", "{model}", "--to", "triton", "--name", "bad name!"], "invalid model name"),
        (["deploy", "{model}", "--to", "riva"], "--to riva needs --out"),
        (["deploy", "{model}", "--to", "riva", "--out", "{out}", "--url", "h:1"], "not used by the riva deployer"),
        (["deploy", "{model}", "--to", "nope"], "unknown deployer 'nope'"),
        (["rollback", "clin", "--deployer", "riva"], "not supported: Riva deploys are run by riva_deploy.sh"),
        (["deploy", "{model}", "--to", "triton", "--parity-manifest", "m.jsonl"], "go together"),
        (["serve", "start", "--http-port", "9", "--grpc-port", "9"], "must differ"),
        (["eval", "{model}", "--endpoint", "triton://127.0.0.1:1", "--out", "{out}"], None),
    ],
)
def test_bad_input_exits_2_with_a_message(argv, message, hf_tiny_model, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = [a.format(model=hf_tiny_model, out=tmp_path / "o") for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message is None or message in err
    assert not (tmp_path / "workspace").exists()  # nothing shipped, nothing logged


def test_serve_start_on_a_busy_port_exits_2_before_starting_tritonserver(tmp_path, capsys):
    http, grpc = free_ports(2)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", http))
        busy.listen()
        code = main(
            ["serve", "start", "--repo", str(tmp_path / "repo"), "--http-port", str(http), "--grpc-port", str(grpc)]
        )
    assert code == 2
    assert f"--http-port {http}: already in use on 127.0.0.1" in capsys.readouterr().err
    assert not (tmp_path / "repo").exists()  # no server state, nothing started


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc: a directory no one can create files in")
@pytest.mark.parametrize(
    "argv",
    [
        ["serve", "start", "--repo", "/proc/flywheel-repo"],
        ["deploy", "m.nemo", "--to", "riva", "--out", "/proc/flywheel-out"],
        ["deploy", "m.nemo", "--to", "triton", "--repo", "/proc/flywheel-repo", "--url", "127.0.0.1:1"],
    ],
)
def test_an_unwritable_repo_or_out_exits_2_naming_it(argv, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    named = next(a for a in argv if a.startswith("/proc/"))
    assert f"{named} is not writable" in capsys.readouterr().err


def test_deploy_to_a_server_that_is_not_there_writes_no_version(tmp_path, capsys, monkeypatch):
    """Otherwise the never-loaded version would later be offered as a rollback target."""
    monkeypatch.chdir(tmp_path)
    base = Path(__file__).resolve().parents[2] / "examples" / "bases" / "espeak" / "base.nemo"
    (port,) = free_ports(1)
    repo = tmp_path / "repo"
    argv = ["deploy", str(base), "--to", "triton", "--repo", str(repo), "--url", f"127.0.0.1:{port}", "--name", "m"]
    assert main(argv) == 1
    assert f"no Triton server answering at 127.0.0.1:{port}" in capsys.readouterr().err
    assert not (repo / "m" / "1").exists()
