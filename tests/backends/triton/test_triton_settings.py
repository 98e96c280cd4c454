"""`[deploy.triton]`: the Triton deployer's own settings live in its table and are validated by its plugin; the
core's `[deploy]` holds only what every deployer shares. No server is started: `check_target` contacts nothing."""

from __future__ import annotations

import pytest

from asr_flywheel.backends.riva.deployer import RivaDeployer
from asr_flywheel.backends.triton.plugin import TritonDeployer
from asr_flywheel.config import load_config
from asr_flywheel.errors import InputError


def config(tmp_path, body: str):
    p = tmp_path / "flywheel.toml"
    p.write_text(f'workspace = "{tmp_path / "ws"}"\n{body}')
    return load_config(p)


def test_the_triton_table_sets_the_repository(tmp_path):
    cfg = config(tmp_path, '[deploy]\nurl = "127.0.0.1:9000"\n[deploy.triton]\nrepo = "/srv/models"\n')
    opts = TritonDeployer().check_target(cfg)
    assert opts["repo"] == "/srv/models" and opts["url"] == "127.0.0.1:9000"
    assert cfg.deploy.table("triton") == {"repo": "/srv/models"}


def test_an_older_flat_repo_key_still_reaches_triton_and_the_default_is_the_workspace(tmp_path):
    assert TritonDeployer().check_target(config(tmp_path, '[deploy]\nrepo = "/old"\n'))["repo"] == "/old"
    assert TritonDeployer().check_target(config(tmp_path, ""))["repo"] == str(tmp_path / "ws" / "triton")


def test_an_unknown_key_of_the_triton_table_is_named_with_its_line(tmp_path):
    cfg = config(tmp_path, '[deploy.triton]\nrepo = "/r"\nrepository = "/typo"\n')
    with pytest.raises(InputError) as exc:
        TritonDeployer().check_target(cfg)
    (problem,) = exc.value.problems
    assert problem.field == "deploy.triton.repository" and problem.line == 4 and "unknown key" in problem.reason


def test_the_riva_table_is_riva_s_and_flags_win(tmp_path):
    cfg = config(tmp_path, "[deploy.riva]\ngrpc_port = 50051\nhttp_port = 70000\n")
    with pytest.raises(InputError) as exc:
        RivaDeployer().check_target(cfg)
    assert [(p.field, p.line) for p in exc.value.problems] == [("deploy.riva.http_port", 4)]
    assert RivaDeployer().check_target(cfg, http_port=8009) == {"grpc_port": 50051, "http_port": 8009}
