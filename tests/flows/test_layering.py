"""The dependency rule: flows → plugins → core. Flows reach a backend only through its plugin (the `Deployer`,
`Server`, `Transcriber`, ... contracts), so a backend can be swapped or left uninstalled without touching flows.
Reads the installed package's source with `ast`: no module is imported, so nothing here can hide an import."""

from __future__ import annotations

import ast
from pathlib import Path

import asr_flywheel.flows
from asr_flywheel.backends.riva.deployer import RivaDeployer
from asr_flywheel.backends.triton.plugin import TritonDeployer
from asr_flywheel.plugins.contracts import Deployer, Server

FORBIDDEN = ("asr_flywheel.backends", "backends")


def backend_imports(path: Path) -> list[str]:
    """`line: module` for every import of a backend module, static or through importlib.import_module("...")."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", "")) in (
            "import_module",
            "__import__",
        ):
            names = [a.value for a in node.args[:1] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
        found += [f"{node.lineno}: {n}" for n in names if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
    return found


def flows_imports() -> dict[str, list[str]]:
    root = Path(asr_flywheel.flows.__file__).parent
    found = {str(p.relative_to(root)): backend_imports(p) for p in sorted(root.rglob("*.py"))}
    return {name: hits for name, hits in found.items() if hits}


def test_flows_never_import_a_backend_module():
    assert flows_imports() == {}


def test_the_scan_sees_every_import_form(tmp_path):
    src = tmp_path / "m.py"
    src.write_text(
        "import asr_flywheel.backends.triton\n"
        "def f():\n"
        "    from asr_flywheel.backends.triton import server\n"
        "    importlib.import_module('asr_flywheel.backends.riva')\n"
        "from asr_flywheel.backends_extra import x\n"  # a different package: not a backend import
        "from asr_flywheel.plugins.manager import Plugins\n"
    )
    assert backend_imports(src) == [
        "1: asr_flywheel.backends.triton",
        "3: asr_flywheel.backends.triton",
        "4: asr_flywheel.backends.riva",
    ]


def test_built_in_deployers_implement_the_whole_contract():
    assert isinstance(TritonDeployer(), Deployer) and isinstance(TritonDeployer(), Server)
    assert isinstance(RivaDeployer(), Deployer) and not isinstance(RivaDeployer(), Server)
