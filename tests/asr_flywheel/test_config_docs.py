"""The documented configuration file must load and equal the defaults (keeps docs/configuration.md true)."""

import re
from pathlib import Path

from asr_flywheel.config import FlywheelConfig, from_dict

DOC = Path(__file__).resolve().parents[2] / "docs" / "configuration.md"


def test_documented_example_is_exactly_the_defaults():
    import tomllib

    block = re.search(r"```toml\n(.*?)```", DOC.read_text(), re.S).group(1)
    assert from_dict(tomllib.loads(block)) == FlywheelConfig()
