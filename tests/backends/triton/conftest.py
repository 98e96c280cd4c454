"""One real tritonserver (from the nvidia-pytriton wheel) on loopback ports for this package's tests, and tiny
models trained by the backends' own trainers (real espeak-ng audio, CPU)."""

from __future__ import annotations

import pytest

from asr_flywheel.flows import steps
from helpers import free_ports

HF_FAST = {"epochs": 1, "batch_size": 8, "gradient_accumulation_steps": 1, "warmup_steps": 1, "lr": 1e-3}
NEMO_FAST = {"epochs": 1, "batch_size": 8, "warmup_steps": 1, "max_steps": 2}


@pytest.fixture(scope="session")
def triton(tmp_path_factory):
    from asr_flywheel.backends.triton import server

    repo = tmp_path_factory.mktemp("triton-repo")
    http_port, grpc_port = free_ports(2)
    info = server.start(repo, http_port=http_port, grpc_port=grpc_port)
    yield info
    server.stop(repo)


@pytest.fixture(scope="session")
def trained_hf(hf_tiny_model, tiny_split, tmp_path_factory):
    return steps.train(tiny_split, str(hf_tiny_model), tmp_path_factory.mktemp("hf-sft"), hyperparameters=HF_FAST)


@pytest.fixture(scope="session")
def trained_nemo(nemo_tiny_models, tiny_split, tmp_path_factory):
    out = tmp_path_factory.mktemp("nemo-sft")
    return steps.train(tiny_split, str(nemo_tiny_models["ctc"]), out, hyperparameters=NEMO_FAST)
