"""riva_deploy.sh: the plan's commands in NVIDIA's containers, in order, failing fast, keys from the environment."""

from __future__ import annotations

import shlex
from pathlib import Path

from asr_flywheel import io as fio
from asr_flywheel.backends.riva.commands import NIM_IMAGE, SERVICEMAKER_IMAGE, RivaPlan

_TEMPLATE = """#!/usr/bin/env bash
# Riva build + deploy for {name}, written by `flywheel deploy --to riva`.
# Architecture (read from the model): {decoder} ({cls}); Riva decoder: {decoder_type}.
# Usage: riva_deploy.sh [nim|classic]   (nim: riva-build NIM form + NIM container; classic: riva-build + riva-deploy)
# Keys come from the environment when this runs: NGC_API_KEY (docker login, NIM) and, for hosted endpoints,
# NVIDIA_API_KEY. No key is stored in this file.
# {boost}
set -euo pipefail
MODE="${{1:-nim}}"
: "${{NGC_API_KEY:?export NGC_API_KEY first (never written into this script)}}"
WORK="${{WORK:-$(cd "$(dirname "$0")" && pwd)/riva}}"
MODEL_DIR={model_dir}
SERVICEMAKER_IMAGE="${{SERVICEMAKER_IMAGE:-{servicemaker}}}"
NIM_IMAGE="${{NIM_IMAGE:-{nim}}}"
mkdir -p "$WORK/export" "$WORK/models"
echo "$NGC_API_KEY" | docker login nvcr.io --username '$oauthtoken' --password-stdin >/dev/null

servicemaker() {{
  docker run --rm --gpus all -v "$MODEL_DIR:/model:ro" -v "$WORK:/data" "$SERVICEMAKER_IMAGE" bash -c "$1"
}}

if [ "$MODE" = classic ]; then
  servicemaker {nemo2riva}
  servicemaker {riva_build_classic}
  servicemaker {riva_deploy}
  echo "models ready in $WORK/models: start them with riva_start.sh from the Riva quick-start"
  exit 0
fi

servicemaker {riva_build_nim}
{nim_run}
for _ in $(seq 1 120); do
  if {health} >/dev/null; then echo "Riva NIM {name} is ready"; exit 0; fi
  sleep 10
done
echo "Riva NIM {name} did not become ready; see: docker logs {name}-nim" >&2
exit 1
"""


def render(plan: RivaPlan) -> str:
    q = shlex.quote
    c = plan.commands
    return _TEMPLATE.format(
        name=plan.name,
        decoder=plan.architecture["decoder"],
        cls=plan.architecture["class"],
        decoder_type=plan.decoder_type,
        model_dir=q(str(Path(plan.model).parent)),
        servicemaker=SERVICEMAKER_IMAGE,
        nim=NIM_IMAGE,
        nemo2riva=q(c["nemo2riva"]),
        riva_build_classic=q(c["riva_build_classic"]),
        riva_deploy=q(c["riva_deploy"]),
        riva_build_nim=q(c["riva_build_nim"]),
        nim_run=c["nim_run"],
        health=c["health"],
        boost=(
            f"Word boosting (per request): {len(plan.boost['words'])} word(s), score {plan.boost['score']:g}, list "
            f'{plan.boost["hash"]}; clients send them (riva_deploy.json "boost").'
            if plan.boost
            else "No word boosting: the model decodes plain."
        ),
    )


def write(plan: RivaPlan, out_dir: str | Path) -> tuple[Path, Path]:
    out = Path(out_dir)
    script = fio.write_text(out / "riva_deploy.sh", render(plan))
    script.chmod(0o755)
    record = fio.write_json(out / "riva_deploy.json", plan.to_dict())
    return script, record
