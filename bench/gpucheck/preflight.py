"""(0) preflight: torch / CUDA / bf16, numba CUDA (NeMo's TDT loss is a numba CUDA kernel: a trivial kernel is
compiled and run), versions and origins of NeMo, Lightning and the rest. NeMo is imported here, after the
compatibility shims."""

from __future__ import annotations

import importlib.metadata as md
import os
import sys
import time

from asr_flywheel.backends.nemo._runtime import quiet_nemo
from gpucheck.compat import compat_shims
from gpucheck.report import SUMMARY, log

PACKAGES = (
    "nemo_toolkit",
    "lightning",
    "pytorch-lightning",
    "transformers",
    "huggingface-hub",
    "numpy",
    "numba-cuda",
    "cuda-bindings",
    "cuda-pathfinder",
    "lhotse",
    "omegaconf",
    "sentencepiece",
    "soundfile",
    "librosa",
    "datasets",
    "torchmetrics",
)


def torch_info() -> dict:
    import torch

    info: dict = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "torch.version.cuda": torch.version.cuda,
        "torch.cuda.is_available": torch.cuda.is_available(),
    }
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        info.update(
            {
                "gpu": torch.cuda.get_device_name(0),
                "gpu_mem_GiB": round(p.total_memory / 2**30, 1),
                "capability": f"{p.major}.{p.minor}",
                "bf16_supported": torch.cuda.is_bf16_supported(),
                "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
            }
        )
    return info


def add_one_kernel_runs() -> str:
    """Compile and run a trivial numba CUDA kernel: "ok", or why not."""
    import numpy as np
    from numba import cuda as ncuda

    try:
        from gpucheck.kernel import add_one

        arr = ncuda.to_device(np.zeros(64, dtype=np.float32))
        add_one[1, 64](arr)
        return "ok" if float(arr.copy_to_host().sum()) == 64.0 else "WRONG RESULT"
    except Exception as e:
        return f"FAILED {type(e).__name__}: {str(e)[:400]}"


def numba_info(want_cuda: bool) -> dict:
    info: dict = {}
    try:
        import numba
        from numba import cuda as ncuda

        info["numba"] = numba.__version__
        info["numba.cuda module"] = getattr(ncuda, "__file__", "?")
        info["numba.cuda.is_available"] = bool(ncuda.is_available())
        try:
            from cuda.pathfinder import load_nvidia_dynamic_lib

            info["libnvvm"] = load_nvidia_dynamic_lib("nvvm").abs_path
        except Exception as e:
            info["libnvvm"] = f"not found by cuda.pathfinder ({type(e).__name__}: {str(e)[:160]})"
        if want_cuda and info["numba.cuda.is_available"]:
            info["numba.cuda.kernel_compile_run"] = add_one_kernel_runs()
            try:
                info["numba.cuda.runtime_version"] = list(ncuda.cudadrv.runtime.get_version())
            except Exception as e:
                info["numba.cuda.runtime_version"] = f"{type(e).__name__}: {str(e)[:200]}"
    except Exception as e:
        info["numba"] = f"FAILED {type(e).__name__}: {e}"
    return info


def package_versions() -> dict:
    out = {}
    for pkg in PACKAGES:
        try:
            out[f"pkg:{pkg}"] = md.version(pkg)
        except md.PackageNotFoundError:
            out[f"pkg:{pkg}"] = None
    return out


def nemo_info() -> dict:
    """Shims first, then the (slow) NeMo import, timed."""
    info: dict = {"compat_shims": compat_shims()}
    t = time.time()
    import lightning
    import nemo
    import nemo.collections.asr
    from nemo.core.utils import numba_utils

    info["nemo"] = nemo.__version__
    info["nemo_from"] = os.path.dirname(nemo.__file__)
    info["import_nemo.collections.asr_s"] = round(time.time() - t, 1)
    info["lightning_from"] = os.path.dirname(lightning.__file__)
    info["nemo.numba_cuda_is_supported"] = numba_utils.numba_cuda_is_supported("0.53.0")
    try:
        info["nemo.numba_fp16"] = list(numba_utils.is_numba_cuda_fp16_supported(return_reason=True))
    except Exception as e:
        info["nemo.numba_fp16"] = f"{type(e).__name__}: {e}"
    return info


def preflight(want_cuda: bool) -> dict:
    info = {**torch_info(), **numba_info(want_cuda), **package_versions(), **nemo_info()}
    quiet_nemo()
    for k, v in info.items():
        print(f"  {k:34s} {v}")
    SUMMARY["preflight"] = info
    if want_cuda and info.get("numba.cuda.kernel_compile_run") != "ok":
        log(
            "WARNING: numba CUDA cannot compile/run a kernel -> the TDT loss will fail. Check libnvvm above "
            "(numba-cuda needs NVVM: pip 'numba-cuda[cu13]' or a CUDA toolkit). Throughput falls back to a proxy loss."
        )
    return info
